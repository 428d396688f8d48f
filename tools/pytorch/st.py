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
