"""Message types for rosbag2 files: the standard ROS 2 Kilted types plus wallwm_msgs.

rosbags knows the standard types; ours are registered from the installed .msg files so that
recordings carry their schemas and open in any rosbag2 tool.
"""

from pathlib import Path

from rosbags.typesys import Stores
from rosbags.typesys import get_types_from_msg
from rosbags.typesys import get_typestore

WALLWM_MSGS = 'wallwm_msgs'


def wallwm_msgs_share() -> Path | None:
    """The installed share/wallwm_msgs folder, or None outside a sourced workspace."""
    try:
        from ament_index_python.packages import PackageNotFoundError
        from ament_index_python.packages import get_package_share_directory
    except ImportError:
        return None
    try:
        return Path(get_package_share_directory(WALLWM_MSGS))
    except PackageNotFoundError:
        return None


def typestore(extra_msg_dirs: list[Path] | None = None):
    """A Kilted typestore with every wallwm_msgs message registered."""
    store = get_typestore(Stores.ROS2_KILTED)
    share = wallwm_msgs_share()
    msg_dirs = list(extra_msg_dirs or [])
    if share is not None:
        msg_dirs.append(share / 'msg')
    types = {}
    for msg_dir in msg_dirs:
        for path in sorted(Path(msg_dir).glob('*.msg')):
            types.update(get_types_from_msg(path.read_text(), f'{WALLWM_MSGS}/msg/{path.stem}'))
    store.register(types)
    return store


def python_type(msgtype: str):
    """The rclpy message class for 'pkg/msg/Name' (rosidl_runtime_py is not on PyPI)."""
    import importlib

    package, kind, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.{kind}'), name)
