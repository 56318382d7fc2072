"""Observation preprocessing: camera frames and joint states to the bundle's tensors.

Images arrive as raw `sensor_msgs/Image` fields (encoding, size, row step, bytes) or as
`CompressedImage` bytes (jpeg/png); they become RGB uint8 at the camera's native size, then the
bundle's (H, W) and [0, 1] float32. Joint states arrive in any order with extra joints; they are
mapped by name to the bundle order. Every rejection is an `InputError` whose message says what was
wrong, for the hold reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

ENC_RGB8 = 'rgb8'
ENC_BGR8 = 'bgr8'
ENC_MONO8 = 'mono8'
ENCODINGS = (ENC_RGB8, ENC_BGR8, ENC_MONO8)
_CHANNELS = {ENC_RGB8: 3, ENC_BGR8: 3, ENC_MONO8: 1}
COMPRESSED_FORMATS = ('jpeg', 'jpg', 'png')
# A frame larger than this (per side) is rejected before decoding: no camera we support is bigger,
# and decoding a hostile 60000x60000 PNG header would allocate gigabytes.
MAX_IMAGE_SIDE = 4096


class InputError(ValueError):
    """An observation the policy must not act on; the message becomes the hold reason."""


def raw_image_to_rgb(encoding: str, height: int, width: int, step: int,
                     data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """A `sensor_msgs/Image` payload -> (height, width, 3) uint8 RGB (a copy, safe to keep)."""
    if encoding not in _CHANNELS:
        raise InputError(f'unsupported image encoding {encoding!r} (supported: {list(ENCODINGS)})')
    if not (0 < height <= MAX_IMAGE_SIDE and 0 < width <= MAX_IMAGE_SIDE):
        raise InputError(f'image size {width}x{height} outside 1..{MAX_IMAGE_SIDE}')
    channels = _CHANNELS[encoding]
    row_bytes = width * channels
    if step < row_bytes:
        raise InputError(f'image step {step} < width*channels {row_bytes} for {encoding}')
    buffer = np.frombuffer(data, dtype=np.uint8)
    if buffer.size < step * (height - 1) + row_bytes:
        raise InputError(
            f'image data has {buffer.size} bytes, {encoding} {width}x{height} step {step} '
            f'needs {step * height}')
    rows = np.lib.stride_tricks.as_strided(
        buffer, shape=(height, row_bytes), strides=(step, 1), writeable=False)
    pixels = rows.reshape(height, width, channels)
    if encoding == ENC_RGB8:
        return np.ascontiguousarray(pixels)
    if encoding == ENC_BGR8:
        return cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_BGR2RGB)
    return cv2.cvtColor(np.ascontiguousarray(pixels[:, :, 0]), cv2.COLOR_GRAY2RGB)


def compressed_to_rgb(fmt: str, data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """A `sensor_msgs/CompressedImage` payload (jpeg or png) -> (H, W, 3) uint8 RGB."""
    # ROS formats look like 'jpeg', 'png' or 'rgb8; jpeg compressed bgr8'; the codec is the last
    # word and the decoded pixels are always BGR (OpenCV's order).
    codec = fmt.strip().lower().split(' ')[-1] if fmt.strip() else ''
    buffer = np.frombuffer(data, dtype=np.uint8)
    if buffer.size == 0:
        raise InputError('compressed image has no data')
    if codec and codec not in COMPRESSED_FORMATS and codec not in ('rgb8', 'bgr8'):
        raise InputError(f'unsupported compressed format {fmt!r} (supported: jpeg, png)')
    size = _compressed_size(buffer)
    if size is None:
        raise InputError(f'compressed image ({fmt or "no format"}, {buffer.size} bytes) is '
                         'neither a PNG nor a JPEG with a readable header')
    if not (0 < size[0] <= MAX_IMAGE_SIDE and 0 < size[1] <= MAX_IMAGE_SIDE):
        raise InputError(f'compressed image size {size[1]}x{size[0]} outside 1..{MAX_IMAGE_SIDE}')
    bgr = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f'compressed image ({fmt or "no format"}, {buffer.size} bytes) '
                         'could not be decoded')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# JPEG start-of-frame markers (they carry the size); C4, C8 and CC are other segments.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _compressed_size(buffer: np.ndarray) -> tuple[int, int] | None:
    """(height, width) from a PNG or JPEG header without decoding the pixels."""
    data = buffer.tobytes()[:65536] if buffer.size > 65536 else buffer.tobytes()
    if data.startswith(_PNG_SIGNATURE) and len(data) >= 24:
        width, height = int.from_bytes(data[16:20], 'big'), int.from_bytes(data[20:24], 'big')
        return height, width
    if not data.startswith(b'\xff\xd8'):
        return None
    pos = 2
    while pos + 9 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:        # fill byte
            pos += 1
            continue
        length = int.from_bytes(data[pos + 2:pos + 4], 'big')
        if marker in _JPEG_SOF:
            height = int.from_bytes(data[pos + 5:pos + 7], 'big')
            width = int.from_bytes(data[pos + 7:pos + 9], 'big')
            return height, width
        pos += 2 + length
    return None


def resize_rgb(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w, 3) uint8 -> (height, width, 3) uint8; area averaging when shrinking."""
    if rgb.shape[:2] == (height, width):
        return rgb
    shrinking = rgb.shape[0] >= height and rgb.shape[1] >= width
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(rgb, (width, height), interpolation=interp)


def images_tensor(frames: Sequence[np.ndarray]) -> np.ndarray:
    """N frames (H, W, 3) uint8 RGB at the bundle size -> (1, N, 3, H, W) float32 in [0, 1]."""
    stacked = np.stack(frames)                                   # (N, H, W, 3)
    chw = stacked.transpose(0, 3, 1, 2).astype(np.float32)       # (N, 3, H, W)
    chw *= np.float32(1.0 / 255.0)
    return chw[np.newaxis]                                       # (1, N, 3, H, W)


class JointMapper:
    """Picks the bundle's joints, by name, out of a joint state in any order with extra joints."""

    def __init__(self, joint_names: Sequence[str]):
        self.joint_names = tuple(joint_names)
        self._cache_key: tuple[str, ...] | None = None
        self._cache_index: np.ndarray | None = None

    def positions(self, names: Sequence[str], positions: Sequence[float]) -> np.ndarray:
        """(J,) float64 positions in bundle order; InputError on missing joints or bad values."""
        names = tuple(names)
        if len(positions) != len(names):
            raise InputError(f'joint state has {len(names)} names but {len(positions)} positions')
        if names != self._cache_key:
            index = {name: i for i, name in enumerate(names)}
            missing = [n for n in self.joint_names if n not in index]
            if missing:
                raise InputError(f'joint state lacks joints {missing}')
            self._cache_index = np.array([index[n] for n in self.joint_names], dtype=np.intp)
            self._cache_key = names
        values = np.asarray(positions, dtype=np.float64)[self._cache_index]
        if not np.all(np.isfinite(values)):
            bad = [n for n, v in zip(self.joint_names, values, strict=True) if not np.isfinite(v)]
            raise InputError(f'joint state has non-finite positions for {bad}')
        return values


@dataclass(frozen=True)
class Normalizer:
    """Per-joint affine normalisation: normalise(x) = (x - mean) / std; denormalise inverts it."""

    mean: np.ndarray  # (J,)
    std: np.ndarray   # (J,)

    @classmethod
    def from_stats(cls, mean: Sequence[float], std: Sequence[float]) -> Normalizer:
        return cls(np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64))

    def normalize(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)

    def denormalize(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) * self.std + self.mean
