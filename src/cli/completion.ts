/**
 * `agentnet completion bash|zsh|fish`: completion scripts generated from the
 * command definitions, so they never miss a command or a flag.
 */

import { CliError } from './common.ts'
import type { Command } from 'commander'

interface Entry {
  /** e.g. `send` or `trust approve` */
  path: string
  description: string
  subcommands: Array<{ name: string, description: string }>
  options: Array<{ flag: string, description: string }>
}

function entries (program: Command): Entry[] {
  const out: Entry[] = []
  const walk = (command: Command, prefix: string[]): void => {
    const path = [...prefix, command.name()]
    out.push({
      path: path.slice(1).join(' '),
      description: command.description(),
      subcommands: command.commands.map(c => ({ name: c.name(), description: c.description() })),
      options: command.options.map(o => ({ flag: o.long ?? o.short ?? '', description: o.description })).filter(o => o.flag !== '')
    })
    for (const sub of command.commands) walk(sub, path)
  }
  walk(program, [])
  return out
}

function bash (program: Command): string {
  const cases = entries(program).map(e => {
    const words = [...e.subcommands.map(s => s.name), ...e.options.map(o => o.flag), '--help'].join(' ')
    return `    "${e.path}") words="${words}" ;;`
  }).join('\n')
  return `# agentnet completion for bash: source it, e.g. agentnet completion bash >> ~/.bashrc
_agentnet() {
  local cur path="" w words i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    case "\${path:+$path }$w" in
${entries(program).filter(e => e.path !== '').map(e => `      "${e.path}") path="${e.path}" ;;`).join('\n')}
    esac
  done
  case "$path" in
${cases}
  esac
  case "\${COMP_WORDS[COMP_CWORD-1]}" in
    --home|--file|--config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _agentnet agentnet
`
}

function zsh (program: Command): string {
  return `#compdef agentnet
# agentnet completion for zsh: agentnet completion zsh > "\${fpath[1]}/_agentnet" (or source it)
autoload -U +X bashcompinit && bashcompinit
${bash(program)}`
}

function fish (program: Command): string {
  const quote = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
  const lines = ['# agentnet completion for fish: agentnet completion fish > ~/.config/fish/completions/agentnet.fish', 'complete -c agentnet -f']
  for (const e of entries(program)) {
    const words = e.path === '' ? [] : e.path.split(' ')
    const condition = words.length === 0
      ? '__fish_use_subcommand'
      : words.length === 1
        ? `__fish_seen_subcommand_from ${words[0]}; and not __fish_seen_subcommand_from ${e.subcommands.map(s => s.name).join(' ') || '--'}`
        : `__fish_seen_subcommand_from ${words[0]}; and __fish_seen_subcommand_from ${words[1]}`
    for (const sub of e.subcommands) {
      lines.push(`complete -c agentnet -n ${quote(condition)} -a ${sub.name} -d ${quote(sub.description)}`)
    }
    for (const option of e.options) {
      const long = option.flag.replace(/^--/, '')
      const file = ['home', 'file', 'config'].includes(long) ? ' -r -F' : ''
      lines.push(`complete -c agentnet -n ${quote(words.length === 0 ? '__fish_use_subcommand' : condition)} -l ${long}${file} -d ${quote(option.description)}`)
    }
  }
  return lines.join('\n') + '\n'
}

export function completionScript (program: Command, shell: string): string {
  switch (shell) {
    case 'bash': return bash(program)
    case 'zsh': return zsh(program)
    case 'fish': return fish(program)
    default: throw new CliError(`no completion for shell ${JSON.stringify(shell)}: use bash, zsh or fish`, 'UsageError', 2)
  }
}
