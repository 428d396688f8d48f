// What the CLI does when the reader of its output goes away: `monet check fixtures | head -1` closes the pipe after
// one line, and the next write fails with EPIPE. Node reports that as an 'error' event on process.stdout; without a
// listener it is an uncaught exception with a stack trace. Here every command stops quietly (exit 1: it did not get
// to finish), except `monet train`, which registers its own handler: a closed output must not lose a training run,
// so the trainer stops at the end of the step and writes a checkpoint, as on Ctrl-C.

type Closed = () => void;

/** The default: stop at once, printing nothing (there is no reader left); exit 1, the command did not finish. */
const stopQuietly: Closed = () => process.exit(1);

let onClosed: Closed = stopQuietly;
let installed = false;

/** Install the EPIPE handling on stdout and stderr (once per process). */
export function guardOutput(): void {
  if (installed) return;
  installed = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
      onClosed();
    });
  }
}

/** Replace what happens when the output is closed, until the returned function restores the default. */
export function onOutputClosed(handler: Closed): () => void {
  onClosed = handler;
  return () => {
    onClosed = stopQuietly;
  };
}
