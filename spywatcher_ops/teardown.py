"""Imported by the root tasks.py for its side effect: `inv` exits without the interpreter's
final garbage collections over objects that exist for the whole run.

At exit CPython clears every module and runs full collections over all tracked objects
(invoke's, the task modules', rich's...): 15-20 ms of every `inv` command, wall and CPU,
after its work is done. gc.freeze() in an atexit handler moves the objects that exist then
out of the collector's sight. Handlers run last-registered first, so this one (registered
when tasks.py is imported) runs after those registered later; threads are joined before any.

What is given up: the finalizers (__del__) of objects caught in reference cycles at exit,
which Python does not promise to run either; objects freed by reference counting still are,
and the standard streams are still flushed. The toolkit closes its files (the journal
fsyncs each record) before a task returns; the memory goes back with the process.
"""

import atexit
import gc

atexit.register(gc.freeze)
