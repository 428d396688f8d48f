#!/usr/bin/python3
"""Add the content checksum (metadata `checksum`, docs/fixtures.md §1) to fixture files written without one.

    /usr/bin/python3 tools/pytorch/add_checksum.py [PATH ...]      (default: fixtures/external/pytorch)

Rewrites each file with the same tensors, bytes, header order, data order and __metadata__ position, plus the
checksum entry; nothing else changes (checked: without the checksum the rewrite reproduces the original bytes).
A file that already carries a correct checksum is left as it is; one whose checksum is wrong is reported and left.
Needs numpy only, not PyTorch: this is how the committed PyTorch fixtures got their checksums without being
recomputed (PyTorch on another machine reproduces their values only to the last few bits).
"""

import json
import os
import struct
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402


def layout(data):
    """Header order, data order and whether __metadata__ comes after the tensor entries."""
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n].decode('utf-8'))
    keys = list(header)
    names = [k for k in keys if k != '__metadata__']
    metadata_last = '__metadata__' in keys and keys.index('__metadata__') > 0
    order = sorted(names, key=lambda k: header[k]['data_offsets'][0])
    return names, order, metadata_last


def seal(path):
    with open(path, 'rb') as f:
        original = f.read()
    meta, tensors = st.read(path)
    if st.CHECKSUM_KEY in meta:
        ok = meta[st.CHECKSUM_KEY] == st.checksum(tensors, meta)
        return 'has a correct checksum' if ok else 'HAS A WRONG CHECKSUM (left as it is)'
    header_order, order, metadata_last = layout(original)
    tmp = path + '.tmp'
    st.write(tmp, tensors, meta, order, header_order, metadata_last)
    with open(tmp, 'rb') as f:
        same = f.read() == original
    if not same:
        os.remove(tmp)
        return 'NOT REPRODUCED by st.write (left as it is)'
    sealed = dict(meta)
    sealed[st.CHECKSUM_KEY] = st.checksum(tensors, meta)
    st.write(tmp, tensors, sealed, order, header_order, metadata_last)
    os.replace(tmp, path)
    return 'checksum added'


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    roots = argv or [os.path.join(here, '..', '..', 'fixtures', 'external', 'pytorch')]
    bad = 0
    for root in roots:
        paths = [root] if os.path.isfile(root) else sorted(
            os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith('.safetensors'))
        for p in paths:
            what = seal(p)
            bad += 'WRONG' in what or 'NOT' in what
            print(f'{os.path.relpath(p)}: {what}')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
