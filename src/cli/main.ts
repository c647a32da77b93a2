/** The process around `runCli`: real streams and environment, and the exit code. */
import { runCli } from "./cli.js";

export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  // `poison list | head` closes the pipe early: that is the reader's choice, not a failure.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw error;
  });
  process.exitCode = await runCli(argv, {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    signals: process,
  });
  // A connection a driver could not release in time must not keep the command alive; the
  // unref'd timer only fires if something else still holds the event loop open.
  setTimeout(() => process.exit(), 2000).unref();
}
