// Shell completion: commander has none built in, so the script is generated from the command
// tree itself (subcommands and options at every level), and cannot drift from it.
import { Argument, type Command } from 'commander';
import { act, leaf, type Context } from '../program.ts';

interface Node {
  path: string;
  words: string[];
}

/** Every command path ("", "hosts", "hosts add") with the words that may follow it. */
export function completionTable(program: Command): Node[] {
  const nodes: Node[] = [];
  const walk = (command: Command, path: string[]) => {
    const subcommands = command.commands.filter((c) => c.name() !== 'help').map((c) => c.name());
    const options = command.options.flatMap((o) => [o.long, o.short].filter((f): f is string => !!f));
    nodes.push({ path: path.join(' '), words: [...subcommands, ...options, '--help'] });
    for (const sub of command.commands) walk(sub, [...path, sub.name()]);
  };
  walk(program, []);
  return nodes;
}

export function bashScript(program: Command): string {
  const cases = completionTable(program)
    .map((n) => `    "${n.path}") words="${[...new Set(n.words)].join(' ')}" ;;`)
    .join('\n');
  return `# crossdock completion for bash: eval "$(crossdock completion bash)" (e.g. in ~/.bashrc)
_crossdock() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" w i words=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in -*) continue ;; esac
    case " $(_crossdock_words "$path") " in *" $w "*) path="\${path:+$path }$w" ;; esac
  done
  COMPREPLY=($(compgen -W "$(_crossdock_words "$path")" -- "$cur"))
}
_crossdock_words() {
  local words=""
  case "$1" in
${cases}
  esac
  echo "$words"
}
complete -F _crossdock crossdock
`;
}

export function zshScript(program: Command): string {
  const cases = completionTable(program)
    .map((n) => `    "${n.path}") words=(${[...new Set(n.words)].join(' ')}) ;;`)
    .join('\n');
  return `#compdef crossdock
# crossdock completion for zsh: eval "$(crossdock completion zsh)" (e.g. in ~/.zshrc, after compinit)
_crossdock_words() {
  local -a words
  case "$1" in
${cases}
  esac
  print -r -- "\${words[@]}"
}
_crossdock() {
  local path="" w i
  for ((i = 2; i < CURRENT; i++)); do
    w="\${words[i]}"
    [[ "$w" == -* ]] && continue
    if [[ " $(_crossdock_words "$path") " == *" $w "* ]]; then path="\${path:+$path }$w"; fi
  done
  compadd -- \${=$(_crossdock_words "$path")}
}
compdef _crossdock crossdock
`;
}

export function registerCompletion(program: Command, ctx: Context): void {
  leaf(program, 'completion', 'print a shell completion script (bash or zsh)', [
    'crossdock completion bash > /etc/bash_completion.d/crossdock',
    'crossdock completion zsh > ~/.zfunc/_crossdock',
  ])
    .addArgument(new Argument('<shell>', 'bash or zsh').choices(['bash', 'zsh']))
    .action(
      act(async (shell: string, _options: unknown, _command: Command) => {
        ctx.streams.stdout.write(shell === 'bash' ? bashScript(program) : zshScript(program));
      }),
    );
}
