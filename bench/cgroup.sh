# Sourced by the benchmarks that hold a command to a Lambda's memory (large.sh,
# hostile.sh): a memory cgroup capped at CAP_MB, so a process that grows past the cap
# is killed by the kernel instead of the figure being assumed, and a runner that
# measures each command's peak RSS inside it.
#
#   cgroup_open NAME CAP_MB    # makes the cgroup; sets CGROUP and CAPPED (yes|no)
#   capped STATS CMD...        # runs CMD in it under GNU time; its exit status
#   peak_mb STATS              # the command's peak RSS in MB, from STATS
#   cgroup_close               # removes the cgroup (empty by then)
#
# Needs root and the memory controller: cgroup v1 (memory.limit_in_bytes, swap capped
# too where memsw exists, as on these machines) or v2 (memory.max, swap.max 0). Without
# them commands run uncapped and CAPPED=no says so: print it beside the figures.

CGROUP=""
CAPPED=no

cgroup_open() {
    local name=$1 bytes=$(($2 << 20))
    if [ -d /sys/fs/cgroup/memory ]; then
        CGROUP=/sys/fs/cgroup/memory/$name
        mkdir -p "$CGROUP" 2>/dev/null && echo "$bytes" >"$CGROUP/memory.limit_in_bytes" 2>/dev/null || return 0
        echo "$bytes" >"$CGROUP/memory.memsw.limit_in_bytes" 2>/dev/null
    elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        CGROUP=/sys/fs/cgroup/$name
        mkdir -p "$CGROUP" 2>/dev/null && echo "$bytes" >"$CGROUP/memory.max" 2>/dev/null || return 0
        echo 0 >"$CGROUP/memory.swap.max" 2>/dev/null
    else
        return 0
    fi
    CAPPED=yes
}

capped() {
    local stats=$1
    shift
    if [ "$CAPPED" = yes ]; then
        echo 0 >"$CGROUP/memory.max_usage_in_bytes" 2>/dev/null
        /usr/bin/time -f '%M' -o "$stats" bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CGROUP" "$@"
    else
        /usr/bin/time -f '%M' -o "$stats" "$@"
    fi
}

peak_mb() {
    echo $(($(tail -1 "$1" | tr -dc 0-9) / 1024))
}

cgroup_close() {
    [ -n "$CGROUP" ] && rmdir "$CGROUP" 2>/dev/null
    true
}
