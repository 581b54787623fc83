# The error semantics of an NBD server, probed with libnbd with its own checks off so that it sends
# what a careless client might. Prints one line per case: "<case> <errno or ok>".
# Usage: python3 errors.py URI SIZE
import sys

import nbd

uri, size = sys.argv[1], int(sys.argv[2])


def probe(name, call):
    try:
        call()
        print(name, "ok")
    except nbd.Error as e:
        print(name, e.errno if e.errno is not None else "error")


h = nbd.NBD()
h.set_strict_mode(0)
h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
h.connect_uri(uri)
probe("read-past-end", lambda: h.pread(2, size - 1))
probe("write-past-end", lambda: h.pwrite(b"ab", size - 1))
probe("zero-past-end", lambda: h.zero(2, size - 1))
probe("trim-past-end", lambda: h.trim(2, size - 1))
probe("status-past-end", lambda: h.block_status(2, size - 1, lambda *a: 0))
probe("read-zero-length", lambda: h.pread(0, 0))
probe("write-zero-length", lambda: h.pwrite(b"", 0))
probe("read-unaligned", lambda: h.pread(1, 7))
probe("zero-64m", lambda: h.zero(min(64 << 20, size), 0))
probe("read-33m", lambda: h.pread(33 << 20, 0))
probe("unknown-flag", lambda: h.pread(512, 0, 0x20))
probe("df-read", lambda: h.pread(512, 0, nbd.CMD_FLAG_DF))
h.shutdown()

# Block status without a selected context.
h = nbd.NBD()
h.set_strict_mode(0)
h.connect_uri(uri)
probe("status-without-context", lambda: h.block_status(512, 0, lambda *a: 0))
h.shutdown()
