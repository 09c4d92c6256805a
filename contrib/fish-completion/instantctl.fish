# fish completion for instantctl(1): global options, commands, and each
# command's subcommands, options and profile names.

set -l commands status profiles forget cache query watch transact mutations rooms login logout whoami auth doctor log-level

# Profile names from the configuration file, if there is one.
function __instantctl_profiles
    set -l conf (set -q XDG_CONFIG_HOME; and echo $XDG_CONFIG_HOME; or echo $HOME/.config)/instantd/instantd.conf
    test -r $conf; and sed -n 's/^[[:space:]]*\[[[:space:]]*profile[[:space:]]\{1,\}\([^]]*[^][:space:]]\)[[:space:]]*\][[:space:]]*\(#.*\)\{0,1\}$/\1/p' $conf
end

complete -c instantctl -f
complete -c instantctl -n "not __fish_seen_subcommand_from $commands" -s s -l socket -r -F -d 'Daemon socket'
complete -c instantctl -n "not __fish_seen_subcommand_from $commands" -s a -l app -x -d 'InstantDB app id'
complete -c instantctl -n "not __fish_seen_subcommand_from $commands" -s p -l profile -x -a '(__instantctl_profiles)' -d 'A profile from the configuration'
complete -c instantctl -n "not __fish_seen_subcommand_from $commands" -s u -l api-uri -x -a 'https:// http://' -d "The server's HTTP API"
complete -c instantctl -n "not __fish_seen_subcommand_from $commands" -l server -x -a 'wss:// ws://' -d 'The sync WebSocket URL'
complete -c instantctl -n "not __fish_seen_subcommand_from $commands" -l token-env -x -d 'Take a refresh token from this variable'
complete -c instantctl -n "not __fish_seen_subcommand_from $commands" -s j -l json -d 'Machine output: JSON lines'
complete -c instantctl -n "not __fish_seen_subcommand_from $commands" -s t -l timeout -x -d 'How long to wait, in ms'
complete -c instantctl -n "not __fish_seen_subcommand_from $commands" -s h -l help -d 'Show help'
complete -c instantctl -n "not __fish_seen_subcommand_from $commands" -l version -d 'Show the version'

complete -c instantctl -n "not __fish_seen_subcommand_from $commands" -a status -d "Each profile's state, since when, server, user, queue"
complete -c instantctl -n "not __fish_seen_subcommand_from $commands" -a profiles -d 'Every profile with its database size, queries, queue'
complete -c instantctl -n "not __fish_seen_subcommand_from $commands" -a forget -d "Remove a profile's stored data"
complete -c instantctl -n "not __fish_seen_subcommand_from $commands" -a cache -d "Export or clear a profile's mirrored data"
complete -c instantctl -n "not __fish_seen_subcommand_from $commands" -a query -d 'Run an InstaQL query once'
complete -c instantctl -n "not __fish_seen_subcommand_from $commands" -a watch -d 'Subscribe to a query and print every result'
complete -c instantctl -n "not __fish_seen_subcommand_from $commands" -a transact -d 'Queue a write'
complete -c instantctl -n "not __fish_seen_subcommand_from $commands" -a mutations -d 'Show, retry or discard queued writes'
complete -c instantctl -n "not __fish_seen_subcommand_from $commands" -a rooms -d 'Join a room or broadcast to it'
complete -c instantctl -n "not __fish_seen_subcommand_from $commands" -a login -d 'Sign the profile in'
complete -c instantctl -n "not __fish_seen_subcommand_from $commands" -a logout -d 'Sign out and forget the token'
complete -c instantctl -n "not __fish_seen_subcommand_from $commands" -a whoami -d 'Who the profile is signed in as'
complete -c instantctl -n "not __fish_seen_subcommand_from $commands" -a auth -d 'Sign in or out step by step'
complete -c instantctl -n "not __fish_seen_subcommand_from $commands" -a doctor -d "Check the configuration, the daemon and each profile's server"
complete -c instantctl -n "not __fish_seen_subcommand_from $commands" -a log-level -d "Change the daemon's log level"

complete -c instantctl -n '__fish_seen_subcommand_from status' -s w -l watch -d 'Follow changes'
complete -c instantctl -n '__fish_seen_subcommand_from status' -s n -l count -x -d 'Exit after N changes'
complete -c instantctl -n '__fish_seen_subcommand_from forget' -l discard-queued -d 'Also drop writes the server has not taken'
complete -c instantctl -n '__fish_seen_subcommand_from forget' -a '(__instantctl_profiles)'
complete -c instantctl -n '__fish_seen_subcommand_from cache; and not __fish_seen_subcommand_from export clear' -a 'export clear'
complete -c instantctl -n '__fish_seen_subcommand_from cache; and __fish_seen_subcommand_from export clear' -a '(__instantctl_profiles)'
complete -c instantctl -n '__fish_seen_subcommand_from query' -s p -l policy -x -a 'cache-first network-only cache-only' -d 'Where the answer may come from'
complete -c instantctl -n '__fish_seen_subcommand_from watch' -s n -l count -x -d 'Exit after N results'
complete -c instantctl -n '__fish_seen_subcommand_from query watch' -l no-partial -d 'No partial answer from the whole mirror'
complete -c instantctl -n '__fish_seen_subcommand_from transact' -l steps -d 'OPS are raw tx-steps'
complete -c instantctl -n '__fish_seen_subcommand_from transact' -l wait -d 'Wait for the server'
complete -c instantctl -n '__fish_seen_subcommand_from mutations; and not __fish_seen_subcommand_from list retry discard' -a 'list retry discard'
complete -c instantctl -n '__fish_seen_subcommand_from doctor' -a '(__instantctl_profiles)'
complete -c instantctl -n '__fish_seen_subcommand_from log-level; and not __fish_seen_subcommand_from error warning notice info debug' -a 'error warning notice info debug'
complete -c instantctl -n '__fish_seen_subcommand_from rooms; and not __fish_seen_subcommand_from join broadcast' -a 'join broadcast'
complete -c instantctl -n '__fish_seen_subcommand_from rooms; and __fish_seen_subcommand_from join' -l type -x -d 'Room type'
complete -c instantctl -n '__fish_seen_subcommand_from rooms; and __fish_seen_subcommand_from join' -l presence -x -d 'Presence JSON'
complete -c instantctl -n '__fish_seen_subcommand_from rooms; and __fish_seen_subcommand_from join' -l count -x -d 'Exit after N events'
complete -c instantctl -n '__fish_seen_subcommand_from login' -l email -x -d 'Mail a code to this address'
complete -c instantctl -n '__fish_seen_subcommand_from login' -l code -x -d 'The mailed code'
complete -c instantctl -n '__fish_seen_subcommand_from login' -l guest -d 'Sign in as a guest'
complete -c instantctl -n '__fish_seen_subcommand_from login' -l token-file -r -F -d 'Adopt a refresh token'
complete -c instantctl -n '__fish_seen_subcommand_from auth; and not __fish_seen_subcommand_from send-code sign-in sign-out whoami' -a 'send-code sign-in sign-out whoami'
complete -c instantctl -n '__fish_seen_subcommand_from auth; and __fish_seen_subcommand_from sign-in; and not __fish_seen_subcommand_from code guest token' -a 'code guest token'
