"""The generated wallwm_msgs types import and carry the documented fields and constants."""

import re
from pathlib import Path

import pytest

MSGS_DIR = Path(__file__).resolve().parents[2] / 'src' / 'wallwm_msgs'
INTERFACE_FILES = sorted(
    p for kind in ('msg', 'srv', 'action') for p in (MSGS_DIR / kind).iterdir()
)


def test_every_requested_interface_exists():
    names = {p.name for p in INTERFACE_FILES}
    assert {
        'EventCommand.msg',
        'EventStatus.msg',
        'ActionChunk.msg',
        'SetMode.srv',
        'ResetPolicy.srv',
        'ExecuteEvent.action',
        'ExecuteInstruction.action',
    } <= names


@pytest.mark.parametrize('path', INTERFACE_FILES, ids=lambda p: p.name)
def test_every_field_is_documented(path):
    """Users read the .msg files: each field and constant says what it means (units, ranges)."""
    lines = path.read_text().splitlines()
    undocumented = []
    for number, line in enumerate(lines, 1):
        code = line.split('#', 1)[0].strip()
        if not code or code == '---':
            continue
        commented_here = '#' in line
        commented_above = number > 1 and lines[number - 2].lstrip().startswith('#')
        if not (commented_here or commented_above):
            undocumented.append(f'{path.name}:{number}: {code}')
    assert not undocumented, 'fields without a comment:\n' + '\n'.join(undocumented)


def test_generated_types_import_and_round_trip():
    from rclpy.serialization import deserialize_message
    from rclpy.serialization import serialize_message

    from wallwm_msgs.action import ExecuteEvent
    from wallwm_msgs.action import ExecuteInstruction
    from wallwm_msgs.msg import ActionChunk
    from wallwm_msgs.msg import EventCommand
    from wallwm_msgs.msg import EventStatus
    from wallwm_msgs.msg import TaskStatus
    from wallwm_msgs.srv import ResetEpisode
    from wallwm_msgs.srv import ResetPolicy
    from wallwm_msgs.srv import SetMode

    status = EventStatus(
        state=EventStatus.STATE_HOLDING,
        hold_reason='stale camera: front',
        progress=0.5,
        boundary_probability=0.25,
        event_index=2,
    )
    assert deserialize_message(serialize_message(status), EventStatus) == status
    assert [
        EventStatus.STATE_IDLE,
        EventStatus.STATE_RUNNING,
        EventStatus.STATE_HOLDING,
        EventStatus.STATE_DONE,
        EventStatus.STATE_FAULT,
    ] == [0, 1, 2, 3, 4]
    assert {EventCommand.MODE_EVENT, EventCommand.MODE_UNIFIED} == {'event', 'unified'}

    chunk = ActionChunk(
        joint_names=['a', 'b'], positions=[0.0, 1.0, 2.0, 3.0], num_steps=2, num_joints=2
    )
    assert deserialize_message(serialize_message(chunk), ActionChunk).positions.tolist() == [
        0.0,
        1.0,
        2.0,
        3.0,
    ]

    assert set(ExecuteEvent.Goal.get_fields_and_field_types()) == {
        'event_text',
        'instruction',
        'timeout',
    }
    assert {'progress', 'boundary_probability', 'steps_executed'} <= set(
        ExecuteEvent.Feedback.get_fields_and_field_types()
    )
    assert {'success', 'reason', 'duration'} <= set(
        ExecuteEvent.Result.get_fields_and_field_types()
    )
    assert {'instruction', 'max_events', 'timeout'} <= set(
        ExecuteInstruction.Goal.get_fields_and_field_types()
    )
    assert ExecuteInstruction.Result.get_fields_and_field_types()['events'] == 'sequence<string>'
    for srv in (SetMode, ResetPolicy, ResetEpisode):
        assert {'success', 'message'} <= set(srv.Response.get_fields_and_field_types())
    assert 'events_done' in TaskStatus.get_fields_and_field_types()


def test_constants_match_the_msg_files():
    """Constants are part of the wire contract: the generated values equal the .msg text."""
    from wallwm_msgs.msg import EventStatus

    text = (MSGS_DIR / 'msg' / 'EventStatus.msg').read_text()
    for name, value in re.findall(r'^uint8 (STATE_\w+) = (\d+)', text, re.M):
        assert getattr(EventStatus, name) == int(value)
