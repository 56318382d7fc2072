"""Batch keys (training samples) shared by samples.py, the model's losses and the tests."""

IMAGES = 'images'  # float32 (B, N_cam, 3, H, W) in [0, 1]
STATE = 'state'  # float32 (B, J), normalised
THINK_IMAGES = 'think_images'  # float32 (B, N_cam, 3, H, W): what the thoughts see
THINK_STATE = 'think_state'  # float32 (B, J): at t_think in [event start, t]
INSTRUCTION_IDS = 'instruction_ids'  # int64 (B, Ti)
INSTRUCTION_MASK = 'instruction_mask'  # int64 (B, Ti)
# With model.event_reads_instruction false: the empty instruction event mode's prefix reads.
BLANK_INSTRUCTION_IDS = 'blank_instruction_ids'  # int64 (B, Ti): [CLS] [SEP]
BLANK_INSTRUCTION_MASK = 'blank_instruction_mask'  # int64 (B, Ti)
EVENT_IDS = 'event_ids'  # int64 (B, Te): caption of the event containing t
EVENT_MASK = 'event_mask'  # int64 (B, Te)
NEXT_EVENT_IDS = 'next_event_ids'  # int64 (B, Te): caption of the following event
FUTURE = 'future'  # float32 (B, N_cam, 3, f, f): end-of-event frame
FUTURE_STATE = 'future_state'  # float32 (B, J): end-of-event joint state, normalised
# 0 for an event the expert erred on purpose: its end (goal, future) is no target either.
EVENT_IMITATE = 'event_imitate'  # float32 (B,)
# Event mode: the segment from t to the end of the event (<= event_action_steps), padded.
SEGMENT_ACTIONS = 'segment_actions'  # float32 (B, Ae, J), normalised
SEGMENT_VALID = 'segment_valid'  # float32 (B, Ae): 1 inside the event
SEGMENT_BOUNDARY = 'segment_boundary'  # float32 (B, Ae): 1 at the event's last step
SEGMENT_PROGRESS = 'segment_progress'  # float32 (B, Ae): (step - start + 1) / duration
# Unified and chunk modes: a fixed chunk from t, padded at the episode's end.
CHUNK_ACTIONS = 'chunk_actions'  # float32 (B, Ac, J), normalised
CHUNK_VALID = 'chunk_valid'  # float32 (B, Ac): 1 inside the episode
CHUNK_BOUNDARY = 'chunk_boundary'  # float32 (B, Ac): 1 at the current event's last step
CHUNK_IN_EVENT = 'chunk_in_event'  # float32 (B, Ac): 1 inside the current event
CHUNK_PROGRESS = 'chunk_progress'  # float32 (B, Ac)
# Drawn by the training loop from its seeded generator (exact resume).
SEGMENT_NOISE = 'segment_noise'  # float32 (B, Ae, J)
CHUNK_NOISE = 'chunk_noise'  # float32 (B, Ac, J)
FLOW_T = 'flow_t'  # float32 (B,)
