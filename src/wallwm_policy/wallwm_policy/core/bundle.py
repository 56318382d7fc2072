"""Loading a model bundle: manifest, sha256 of every file, tokenizer, checked ONNX sessions.

Everything that can be wrong with a bundle is found here, at configure time, and reported as one
`BundleError` naming the file - never later as a shape error in the control loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wallwm_policy.core import manifest as mf
from wallwm_policy.core.sessions import GraphSession
from wallwm_policy.core.sessions import ProviderChoice
from wallwm_policy.core.sessions import SessionConfig
from wallwm_policy.core.sessions import SessionError
from wallwm_policy.core.sessions import choose_providers
from wallwm_policy.core.tokenizer import BundleTokenizer


class BundleError(RuntimeError):
    """The bundle cannot be used; the message names the file and what is wrong with it."""


@dataclass(frozen=True)
class Bundle:
    root: Path
    manifest: mf.Manifest
    tokenizer: BundleTokenizer
    graphs: dict[str, GraphSession]  # only the graphs some offered mode uses
    providers: ProviderChoice


def load_bundle(path: str | Path, config: SessionConfig | None = None) -> Bundle:
    """Validate and open the bundle folder at `path` (or its manifest.json)."""
    config = config or SessionConfig()
    root = Path(path)
    if root.name == mf.MANIFEST_FILE:
        root = root.parent
    if not root.is_dir():
        raise BundleError(f'{root}: bundle folder not found')
    try:
        manifest = mf.load(root)
        mf.verify_files(manifest, root)
    except mf.ManifestError as exc:
        raise BundleError(str(exc)) from None
    try:
        tokenizer = BundleTokenizer(root / manifest.tokenizer.file, manifest.tokenizer.pad_id)
    except ValueError as exc:
        raise BundleError(str(exc)) from None
    used = []
    for mode in manifest.modes.values():
        for name in (*mode.per_event, *mode.per_step):
            if name not in used:
                used.append(name)
    first = root / manifest.graphs[used[0]].file
    choice = choose_providers(config, first)
    graphs = {}
    for name in used:
        spec = manifest.graphs[name]
        try:
            graphs[name] = GraphSession(name, root / spec.file, spec, config, choice)
        except SessionError as exc:
            raise BundleError(str(exc)) from None
    return Bundle(root=root, manifest=manifest, tokenizer=tokenizer, graphs=graphs,
                  providers=choice)
