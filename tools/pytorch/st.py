"""A minimal safetensors writer and reader (the `safetensors` package is not needed).

File layout (https://huggingface.co/docs/safetensors):
  8 bytes   little-endian u64 N = length of the JSON header
  N bytes   UTF-8 JSON: {"__metadata__": {str: str}, "<name>": {"dtype", "shape", "data_offsets": [begin, end]}, ...}
            padded with spaces so that the data section starts at a multiple of 8
  rest      the raw little-endian bytes of every tensor; data_offsets are relative to the start of this section

The writer is deterministic: the same tensors, order and metadata give the same bytes.
"""

import json
import struct
import zlib

import numpy as np

# safetensors dtype name -> little-endian numpy dtype
DTYPES = {
    'F64': np.dtype('<f8'),
    'F32': np.dtype('<f4'),
    'I64': np.dtype('<i8'),
    'I32': np.dtype('<i4'),
    'U8': np.dtype('u1'),
}


def write(path, tensors, metadata, order=None, header_order=None, metadata_last=False):
    """Write `tensors` ({name: (dtype_name, numpy array)}) to `path`.

    `order` (a list of names) sets the order of the data blocks, `header_order` that of the header entries (default:
    the same as `order`, itself by default the insertion order of `tensors`); `metadata_last` puts `__metadata__`
    after the tensor entries. A reader must depend on none of these orders (JSON objects are unordered, and the
    Rust safetensors writer itself lays out data in a different order from its header), so some fixtures vary them.
    """
    names = list(order) if order is not None else list(tensors)
    hnames = list(header_order) if header_order is not None else names
    for ns in (names, hnames):
        if sorted(ns) != sorted(tensors):
            raise ValueError(f'write {path}: order names {sorted(ns)} do not match tensors {sorted(tensors)}')
    for k, v in metadata.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f'write {path}: __metadata__ must map str to str, found {k!r}: {type(v).__name__}')
    entries = {}
    blobs = []
    offset = 0
    for name in names:
        dtype, arr = tensors[name]
        raw = np.ascontiguousarray(np.asarray(arr), dtype=DTYPES[dtype]).tobytes()
        entries[name] = {'dtype': dtype, 'shape': list(np.shape(arr)), 'data_offsets': [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header = {} if metadata_last else {'__metadata__': dict(metadata)}
    for name in hnames:
        header[name] = entries[name]
    if metadata_last:
        header['__metadata__'] = dict(metadata)
    text = json.dumps(header, separators=(',', ':'), ensure_ascii=True).encode('utf-8')
    text += b' ' * ((-len(text)) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


CHECKSUM_KEY = 'checksum'


def checksum(tensors, metadata):
    """The fixture content checksum (docs/fixtures.md §1, metadata key `checksum`; src/fixtures/checksum.ts).

    CRC-32 over every other metadata entry sorted by key (key NUL value NUL), then every tensor sorted by name
    (name NUL dtype NUL comma-joined shape NUL, then its little-endian bytes); names sorted by their UTF-8 bytes.
    Independent of the header, data and __metadata__ orders `write` can vary.
    """
    c = 0
    for k in sorted((k for k in metadata if k != CHECKSUM_KEY), key=lambda k: k.encode('utf-8')):
        c = zlib.crc32(f'{k}\0{metadata[k]}\0'.encode('utf-8'), c)
    for name in sorted(tensors, key=lambda n: n.encode('utf-8')):
        dtype, arr = tensors[name]
        shape = ','.join(str(n) for n in np.shape(arr))
        c = zlib.crc32(f'{name}\0{dtype}\0{shape}\0'.encode('utf-8'), c)
        c = zlib.crc32(np.ascontiguousarray(np.asarray(arr), dtype=DTYPES[dtype]).tobytes(), c)
    return f'crc32:{c:08x}'


def read(path):
    """Read a safetensors file: returns (metadata, {name: (dtype_name, numpy array)})."""
    with open(path, 'rb') as f:
        data = f.read()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n].decode('utf-8'))
    meta = header.pop('__metadata__', {})
    base = 8 + n
    out = {}
    for name, h in header.items():
        b, e = h['data_offsets']
        arr = np.frombuffer(data[base + b:base + e], dtype=DTYPES[h['dtype']]).reshape(h['shape'])
        out[name] = (h['dtype'], arr)
    return meta, out
