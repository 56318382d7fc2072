# Source this file to use the wallwm workspace in a shell: the venv plus the colcon install space.
# (Users with a full ROS 2 install source /opt/ros/<distro>/setup.bash and install/setup.bash instead.)
_wallwm_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
. "$_wallwm_root/.venv/bin/activate"
export AMENT_PREFIX_PATH="$_wallwm_root/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
# colcon's setup script references unset variables; keep it out of `set -u`.
case $- in *u*) _wallwm_u=1; set +u;; *) _wallwm_u=0;; esac
# shellcheck disable=SC1091
. "$_wallwm_root/install/local_setup.bash"
[ "$_wallwm_u" = 1 ] && set -u
export MUJOCO_GL="${MUJOCO_GL:-egl}" MESA_SHADER_CACHE_DISABLE=true
unset _wallwm_root _wallwm_u
