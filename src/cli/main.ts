/**
 * The CLI entry: `hardneg <command>` and `mine-negatives`. Drivable from tests with
 * injected argv and output sinks; nothing here calls process.exit.
 */
import { Command, CommanderError } from 'commander'
import { isHardnegError, toolVersion, type EmbedResult, type MineResult } from '../index.js'
import { embedCommand } from './embed.js'
import { mineCommand } from './mine.js'
import { reportCommand } from './report.js'
import { validateCommand } from './validate.js'

/** Where the CLI writes, and what it returns to a test. */
export interface CliIO {
  stdout: (text: string) => void // normal output
  stderr: (text: string) => void // progress and errors
  stderrIsTTY: boolean // draw a progress bar instead of plain lines
  result?: MineResult // set by `mine` when it finishes
  embedResult?: EmbedResult // set by `embed` when it finishes
  exitCode?: number // set by a command that finishes with another status than 0 (validate: 1 when a finding reaches --fail-on)
}

/**
 * The process's own streams. A reader that closes early (`hardneg mine --help | head -5`)
 * ends the stream with EPIPE: writes to it stop quietly, and the command finishes with its
 * own exit code (0 for help), as command-line tools do; a mining run still completes its
 * shards, whose summary simply has no reader.
 */
export function processIO(): CliIO {
  return {
    stdout: quietOnClose(process.stdout),
    stderr: quietOnClose(process.stderr),
    stderrIsTTY: process.stderr.isTTY === true,
  }
}

/** A writer to `stream` that drops output once the stream's reader has gone (EPIPE). */
export function quietOnClose(stream: NodeJS.WritableStream): (text: string) => void {
  let closed = false
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err
    closed = true
  })
  return (text) => {
    if (!closed) stream.write(text)
  }
}

function configure(cmd: Command, io: CliIO): Command {
  return cmd.exitOverride().configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
}

/**
 * Runs `hardneg` with `argv` (without node and script). Returns the exit code: 0 done,
 * 2 bad input or options (one line on stderr), 1 a bug (stack on stderr); `validate`
 * also returns 1 when a finding reaches its --fail-on.
 */
export async function runHardneg(argv: readonly string[], io: CliIO = processIO()): Promise<number> {
  const program = configure(new Command('hardneg'), io)
    .description('Mine hard negatives and filter false negatives for contrastive embedding training data')
    .version(await toolVersion(), '-V, --version')
    .showHelpAfterError()
  program.addCommand(configure(mineCommand(io, 'mine'), io).alias('mine-negatives'))
  program.addCommand(configure(embedCommand(io), io))
  program.addCommand(configure(validateCommand(io), io))
  program.addCommand(configure(reportCommand(io), io))
  return run(program, argv, io)
}

/** Runs `mine-negatives` with `argv`; the same as `hardneg mine`. */
export async function runMineNegatives(argv: readonly string[], io: CliIO = processIO()): Promise<number> {
  return run(configure(mineCommand(io, 'mine-negatives'), io), argv, io)
}

async function run(program: Command, argv: readonly string[], io: CliIO): Promise<number> {
  try {
    await program.parseAsync([...argv], { from: 'user' })
    return io.exitCode ?? 0
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0
      // Help shown because no command was given is a usage error, like a bad flag.
      if (err.code === 'commander.help') return err.exitCode === 0 ? 0 : 2
      return 2
    }
    if (isHardnegError(err)) {
      io.stderr(`hardneg: error ${err.code}: ${err.message}\n`)
      return 2
    }
    io.stderr(`hardneg: internal error (a bug; please report it with this output):\n${(err as Error).stack ?? String(err)}\n`)
    return 1
  }
}
