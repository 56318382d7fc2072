"""A short closed-loop evaluation runs the real runtime core on the real sim and writes its
table."""

import csv
import math

import pytest

from wallwm_policy.core.controller import ControlConfig
from wallwm_tools import evaluate


def test_wilson_interval_matches_the_closed_form():
    assert evaluate.wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert evaluate.wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert evaluate.wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)


def test_difference_interval_matches_newcombes_worked_example():
    # Newcombe (1998), Statistics in Medicine 17:873, method 10: 56/70 vs 48/80
    d, low, high = evaluate.difference_interval(56, 70, 48, 80)
    assert (d, low, high) == pytest.approx((0.2, 0.0524, 0.3339), abs=1e-4)


def test_short_evaluation_produces_its_table(tmp_path, tiny_bundle, capsys):
    out = tmp_path / 'eval'
    assert (
        evaluate.main(
            [
                '--bundle',
                str(tiny_bundle),
                '--modes',
                'event',
                'unified',
                'chunk',
                '--families',
                'push',
                'pick_place',
                '--episodes',
                '1',
                '--workers',
                '1',
                '--out',
                str(out),
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(open(out / 'episodes.csv')))
    assert {(r['mode'], r['family']) for r in rows} == {
        (m, f) for m in ('event', 'unified', 'chunk') for f in ('push', 'pick_place')
    }
    for row in rows:
        assert int(row['seed']) >= evaluate.HELDOUT_FIRST_SEED
        assert 0 < int(row['steps']) and int(row['events_total']) >= 4
        assert float(row['latency_ms']) > 0
    event_rows = [r for r in rows if r['mode'] == 'event']
    # Every expert event was sent and ended (at its boundary or the segment's end).
    assert all(r['events_done'] == r['events_total'] for r in event_rows)
    assert all(r['events_done'] == '-1' for r in rows if r['mode'] == 'chunk')
    table = (out / 'table.md').read_text()
    assert '95% CI (Wilson)' in table and table.count('\n| ') >= 7
    assert '| event − chunk | push |' in table and '95% CI (Newcombe)' in table
    assert 'split `heldout`' in table
    # The node's defaults: no start noise, H steps executed from each plan, one approach replan.
    assert (f'noise scale {ControlConfig.noise_scale:g}, '
            f'at most {ControlConfig.execute_steps} steps executed per plan, replanned once '
            f'{ControlConfig.approach_steps} steps before a planned boundary.') in table
    # Event mode also records each event's end: how it ended and how far from the expert's end.
    ends = list(csv.DictReader(open(out / 'events.csv')))
    assert len(ends) == sum(int(r['events_total']) for r in event_rows)
    assert {e['reason'] for e in ends} <= {'boundary', 'segment_end'}
    reach = [e for e in ends if e['family'] == 'pick_place' and e['index'] == '0']
    assert reach[0]['caption'].startswith('reach above the ')
    assert 0.0 <= float(reach[0]['end_error_cm']) < 50.0  # the arm cannot leave the table
    release = [e for e in ends if e['caption'].startswith('release')]
    assert release and all(math.isnan(float(e['end_error_cm'])) for e in release)
    assert '| pick_place | reach | 1 |' in table and '| pick_place | release | 1 |' in table

    # A later run adds its episodes to these (the baseline evaluated on its own, say) ...
    more = tmp_path / 'more'
    args = [
        '--bundle',
        str(tiny_bundle),
        '--modes',
        'event',
        '--families',
        'push',
        '--episodes',
        '1',
        '--workers',
        '1',
        '--with-episodes',
        str(out / 'episodes.csv'),
    ]
    assert (
        evaluate.main(
            [*args, '--first-seed', str(evaluate.HELDOUT_FIRST_SEED + 1), '--out', str(more)]
        )
        == 0
    )
    merged = list(csv.DictReader(open(more / 'episodes.csv')))
    assert len(merged) == len(rows) + 1
    assert '| event | push | 2 |' in (more / 'table.md').read_text()
    assert '| chunk | pick_place | 1 |' in (more / 'table.md').read_text()
    # ... but never counts an episode twice.
    with pytest.raises(SystemExit):
        evaluate.main([*args, '--out', str(tmp_path / 'twice')])
    with pytest.raises(SystemExit):
        evaluate.main([*args[:-2], '--noise-scale', '2', '--out', str(tmp_path / 'loud')])
    assert not (tmp_path / 'loud').exists()
    with pytest.raises(SystemExit):
        evaluate.main([*args[:-2], '--execute-steps', '0', '--out', str(tmp_path / 'none')])
    assert not (tmp_path / 'none').exists()
    with pytest.raises(SystemExit):
        evaluate.main([*args[:-2], '--approach-steps', '-1', '--out', str(tmp_path / 'back')])
    assert not (tmp_path / 'back').exists()
