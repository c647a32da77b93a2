import type { OptionSpec } from "../args.js";
import { defineCommand, type OptionSpecs } from "../context.js";
import { ExitCode, usageError } from "../errors.js";

const SHELLS = ["bash", "zsh", "fish"] as const;
type Shell = (typeof SHELLS)[number];

/** The options of `poison completion`; `run` and its helpers are typed by them. */
const COMPLETION_OPTIONS = {} as const satisfies OptionSpecs;

export const completionCommand = defineCommand({
  name: "completion",
  summary: "print a shell completion script: bash, zsh or fish",
  usage: ["poison completion bash|zsh|fish"],
  description: `Prints a script that completes poison's commands, options, --state values and context
names (read with \`poison context list --names\` as you type). Load it from your shell's startup
file, as in the examples.`,
  options: COMPLETION_OPTIONS,
  positionals: { min: 1, max: 1 },
  scope: "local",
  examples: [
    ["poison completion bash > ~/.local/share/bash-completion/completions/poison", "bash"],
    ["poison completion bash >> ~/.bashrc", "or bash, without bash-completion"],
    ["poison completion zsh > ~/.zfunc/_poison", "zsh, with ~/.zfunc in $fpath"],
    ["poison completion fish > ~/.config/fish/completions/poison.fish", "fish"],
  ],
  async run(ctx): Promise<number> {
    const shell = ctx.args[0] as string;
    if (!(SHELLS as readonly string[]).includes(shell)) {
      throw usageError(
        `no completion for ${JSON.stringify(shell)}: the shells are ${SHELLS.join(", ")}`,
        "for example `poison completion bash`",
      );
    }
    const { COMMANDS, STORE_OPTIONS, OUTPUT_OPTIONS } = await import("../cli.js");
    const model: CompletionModel = {
      commands: COMMANDS.map((command) => ({
        name: command.name,
        summary: command.summary,
        options: {
          ...command.options,
          ...(command.scope === "store" ? STORE_OPTIONS : {}),
          ...OUTPUT_OPTIONS,
        },
        words: wordsOf(command.name),
      })),
    };
    model.commands.push({
      name: "help",
      summary: "show help for a command",
      options: {},
      words: COMMANDS.map((c) => c.name),
    });
    const script = { bash, zsh, fish }[shell as Shell](model);
    await ctx.out.write(script);
    return ExitCode.Ok;
  },
});

/** The words a command takes first: context's actions, completion's shells. */
function wordsOf(command: string): string[] {
  if (command === "context") return ["list", "show", "use", "set", "delete"];
  if (command === "completion") return [...SHELLS];
  return [];
}

interface CompletionModel {
  commands: {
    name: string;
    summary: string;
    options: Record<string, OptionSpec>;
    words: string[];
  }[];
}

/** Single-quoted for sh, bash, zsh and fish alike. */
function q(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** For fish, whose single quotes escape with a backslash. */
function fq(text: string): string {
  return `'${text.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

function valueTaking(model: CompletionModel): string[] {
  const names = new Set<string>();
  for (const command of model.commands)
    for (const [name, spec] of Object.entries(command.options))
      if (spec.type === "string") names.add(`--${name}`);
  return [...names].sort();
}

function bash(model: CompletionModel): string {
  const cases = model.commands
    .map((command) => {
      const flags = Object.entries(command.options).flatMap(([name, spec]) => [
        `--${name}`,
        ...(spec.short ? [`-${spec.short}`] : []),
      ]);
      return `    ${command.name}) opts=${q([...command.words, ...flags].join(" "))} ;;`;
    })
    .join("\n");
  return `# poison completion for bash. Load it with: eval "$(poison completion bash)"
_poison() {
  local cur prev cmd i opts
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  case "$prev" in
    --context)
      COMPREPLY=($(compgen -W "$(poison context list --names 2>/dev/null)" -- "$cur")); return ;;
    --state)
      COMPREPLY=($(compgen -W 'poisoned in-progress stale any' -- "$cur")); return ;;
    ${valueTaking(model)
      .filter((o) => o !== "--context" && o !== "--state")
      .join("|")})
      COMPREPLY=(); return ;;
  esac
  cmd=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in
      --store|--namespace|--timeout|--context) ((i++)) ;;
      -*) ;;
      *) cmd="\${COMP_WORDS[i]}"; break ;;
    esac
  done
  if [[ -z "$cmd" ]]; then
    COMPREPLY=($(compgen -W ${q(`${model.commands.map((c) => c.name).join(" ")} --help --version`)} -- "$cur"))
    return
  fi
  opts=""
  case "$cmd" in
${cases}
  esac
  if [[ "$cmd" == context && "$prev" =~ ^(show|use|set|delete)$ ]]; then
    opts="$(poison context list --names 2>/dev/null)"
  fi
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -F _poison poison
`;
}

function zsh(model: CompletionModel): string {
  const spec = (name: string, option: OptionSpec) => {
    const help = option.help.replaceAll("[", "(").replaceAll("]", ")").replaceAll(":", " ");
    if (option.type === "boolean") return q(`--${name}[${help}]`);
    const action =
      name === "context"
        ? "_poison_contexts"
        : option.choices
          ? `(${option.choices.join(" ")})`
          : "";
    return q(`--${name}=[${help}]:${option.value ?? "value"}:${action}`);
  };
  const cases = model.commands
    .map((command) => {
      const specs = Object.entries(command.options).flatMap(([name, option]) => [
        spec(name, option),
        ...(option.short
          ? [q(`-${option.short}[${option.help.replaceAll("[", "(").replaceAll("]", ")")}]`)]
          : []),
      ]);
      const words =
        command.words.length > 0 ? ` ${q(`1:${command.name}:(${command.words.join(" ")})`)}` : "";
      const second = command.name === "context" ? ` ${q("2:context:_poison_contexts")}` : "";
      return `    ${command.name}) _arguments -s ${specs.join(" ")}${words}${second} ;;`;
    })
    .join("\n");
  const commands = model.commands
    .map((c) => q(`${c.name}:${c.summary.replaceAll(":", " ")}`))
    .join(" ");
  return `#compdef poison
# poison completion for zsh. Save it as _poison in a directory of $fpath, or: source <(poison completion zsh)
_poison_contexts() {
  local -a names
  names=(\${(f)"$(poison context list --names 2>/dev/null)"})
  _describe 'context' names
}
_poison() {
  local -a commands
  commands=(${commands})
  if (( CURRENT == 2 )); then
    _describe 'command' commands
    _arguments '(-V --version)'{-V,--version}'[print the version]' '(-h --help)'{-h,--help}'[show help]'
    return
  fi
  local cmd=\${words[2]}
  shift words
  (( CURRENT-- ))
  case $cmd in
${cases}
  esac
}
if [[ $zsh_eval_context[-1] == loadautoload ]]; then _poison "$@"; else compdef _poison poison; fi
`;
}

function fish(model: CompletionModel): string {
  const lines = [
    "# poison completion for fish. Save it as ~/.config/fish/completions/poison.fish",
    "complete -c poison -f",
    `complete -c poison -n __fish_use_subcommand -s V -l version -d ${fq("print the version")}`,
  ];
  for (const command of model.commands) {
    lines.push(
      `complete -c poison -n __fish_use_subcommand -a ${command.name} -d ${fq(command.summary)}`,
    );
    const when = `-n ${fq(`__fish_seen_subcommand_from ${command.name}`)}`;
    if (command.words.length > 0)
      lines.push(`complete -c poison ${when} -a ${fq(command.words.join(" "))}`);
    for (const [name, option] of Object.entries(command.options)) {
      const short = option.short ? ` -s ${option.short}` : "";
      let values = "";
      if (name === "context") values = ` -x -a ${fq("(poison context list --names 2>/dev/null)")}`;
      else if (option.choices) values = ` -x -a ${fq(option.choices.join(" "))}`;
      else if (option.type === "string") values = " -r";
      lines.push(`complete -c poison ${when}${short} -l ${name}${values} -d ${fq(option.help)}`);
    }
  }
  return `${lines.join("\n")}\n`;
}
