"""An event: a captioned, contiguous segment of one episode (the unit WALL-WM learns in)."""

from dataclasses import dataclass

SOURCES = ('expert', 'sidecar', 'auto')


@dataclass(frozen=True)
class Event:
    start: int               # first frame of the event
    end: int                 # one past its last frame
    caption: str
    level: str = 'event'
    source: str = 'expert'   # 'expert' (narrated), 'sidecar' (imported) or 'auto' (segmented)
    # False: the actions are a deliberate error (noise injection); train on recovering from the
    # states they lead to, never on reproducing them.
    imitate: bool = True

    def __post_init__(self):
        if not 0 <= self.start < self.end:
            raise ValueError(f'event [{self.start}, {self.end}) is empty or negative')
        if not self.caption:
            raise ValueError(f'event [{self.start}, {self.end}) has no caption')
        if self.source not in SOURCES:
            raise ValueError(f'event source {self.source!r} is not one of {SOURCES}')
        if not isinstance(self.imitate, bool):
            raise ValueError(f'event imitate must be true or false, got {self.imitate!r}')
