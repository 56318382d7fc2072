"""The demo report: a GIF of the front camera, joint trajectories, the event timeline with
captions and boundary probability, and success per episode, in one Markdown file."""

from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

JOINTS = ['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper']


def _gif(frames, path: Path) -> None:
    images = [Image.fromarray(f).resize((192, 192), Image.NEAREST) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=100, loop=0)


def _plot(run, path: Path) -> None:
    fig, (ax_j, ax_e) = plt.subplots(
        2, 1, figsize=(10, 6), sharex=True, gridspec_kw={'height_ratios': [3, 2]}
    )
    if run.joints:
        joints = np.array(run.joints)
        for j, name in enumerate(JOINTS):
            ax_j.plot(run.joint_times, joints[:, j], label=name)
    ax_j.set_ylabel('joint position [rad]')
    ax_j.legend(fontsize=7, ncol=3)
    ax_j.set_title(f'{run.family} seed {run.seed}: "{run.instruction}"', fontsize=9)
    if run.boundary:
        ax_e.plot(run.status_times, run.boundary, color='k', lw=0.8, label='boundary probability')
    for k, event in enumerate(run.events):
        color = 'tab:green' if event.success else 'tab:red'
        ax_e.axvspan(event.start, event.end, color=color, alpha=0.15)
        ax_e.text(event.start, 1.02 + 0.12 * (k % 2), event.caption, fontsize=6, rotation=0)
    ax_e.set_ylim(0, 1.3)
    ax_e.set_xlabel('time [s]')
    ax_e.set_ylabel('event timeline')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(runs, out: Path, bundle: Path) -> Path:
    lines = [
        '# wallwm closed-loop demo',
        '',
        f'Bundle: `{bundle}`',
        '',
        'Event mode: each expert event description is sent as an `ExecuteEvent` goal; the sim '
        'and the policy run as separate ROS 2 processes. Held-out instruction paraphrases.',
        '',
        '| family | seed | instruction | events completed (boundary or segment end) | success |',
        '|---|---|---|---|---|',
    ]
    for run in runs:
        done = sum(e.success for e in run.events)
        lines.append(
            f'| {run.family} | {run.seed} | {run.instruction} | {done}/{len(run.events)} '
            f'| {"yes" if run.success else "no"} |'
        )
    for run in runs:
        stem = f'{run.family}_{run.seed}'
        if run.frames:
            _gif(run.frames, out / f'{stem}.gif')
        _plot(run, out / f'{stem}.png')
        lines += [
            '',
            f'## {run.family}, seed {run.seed}',
            '',
            f'![camera]({stem}.gif) ![trajectories and events]({stem}.png)',
            '',
        ]
        lines += [f'- `{e.caption}`: {e.reason} ({e.end - e.start:.1f} s)' for e in run.events]
    path = out / 'report.md'
    path.write_text('\n'.join(lines) + '\n')
    return path
