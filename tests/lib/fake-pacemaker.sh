#!/usr/bin/env bash
# fake-pacemaker.sh - stand-ins for the Pacemaker tools the agents call, for the benchmarks
# (tests/bench/monitor.sh, rewind.sh). Sourced, never run. The integration tests have their
# own, stricter ones (tests/integration/fake.rs: any call pgha does not make fails there).
#
# The tools are /bin/sh scripts made of builtins only: they start no process, so what a
# benchmark counts and times is the agent's. Node attributes are files in the STATE
# directory, named after the attribute and the node (master-<rsc>.<node> for a promotion
# score). Every write is logged to STATE/.writes, every call the fake does not know to
# STATE/.unsupported (the call fails): a benchmark checks both.

# fake_tool SBIN STATE NAME: writes SBIN/NAME, whose body comes on stdin. The body may use
# $S (STATE), $ARGS (the arguments), `unsupported`, `get FILE` (prints the value, or exits
# 105 as Pacemaker's tools do for a missing attribute) and `set_attr FILE VALUE`.
fake_tool() {
    local sbin=$1 state=$2 name=$3
    {
        printf '#!/bin/sh\n# Fake %s for the pgha benchmarks (tests/lib/fake-pacemaker.sh).\n' "$name"
        printf 'S=%s\n' "$state"
        cat <<'EOF'
ARGS="$*"
unsupported() { echo "$0 $ARGS" >>"$S/.unsupported"; echo "fake $0: unsupported: $ARGS" >&2; exit 1; }
get() { # file
    [ -f "$1" ] || exit 105
    read -r v <"$1"; printf "%s\n" "$v"
}
set_attr() { # file value
    echo "$0 $1 $2" >>"$S/.writes"; printf "%s\n" "$2" >"$1"
}
EOF
        cat
    } >"$sbin/$name"
    chmod 0755 "$sbin/$name"
}

# fake_pacemaker SBIN STATE NODE...: crm_node and crm_attribute, what pgha calls, in SBIN;
# STATE made empty, with NODE... as the partition. The local node is the one Pacemaker
# names in OCF_RESKEY_CRM_meta_on_node.
fake_pacemaker() {
    local sbin=$1 state=$2
    shift 2
    mkdir -p "$sbin" "$state"
    fake_tool "$sbin" "$state" crm_node <<'EOF'
case "$*" in
    -n|--name) printf "%s\n" "${OCF_RESKEY_CRM_meta_on_node:?}" ;;
    -p|--partition) read -r p <"$S/.partition"; printf "%s\n" "$p" ;;
    *) unsupported ;;
esac
EOF
    # pgha: crm_attribute --promotion=<rsc> -N <node> -G -q | -v <score>; and the forms
    # crm_master (PAF) calls it with
    fake_tool "$sbin" "$state" crm_attribute <<'EOF'
name= node=${OCF_RESKEY_CRM_meta_on_node:?} op= val=
while [ $# -gt 0 ]; do
    case "$1" in
        --promotion=*) name=master-${1#--promotion=} ;;
        -p|--promotion) name=master-${OCF_RESOURCE_INSTANCE:?} ;;
        -n|--name) shift; name=$1 ;;
        --name=*) name=${1#--name=} ;;
        -N|--node) shift; node=$1 ;;
        --node=*) node=${1#--node=} ;;
        -l|--lifetime|-t|--type) shift ;;
        -q|--quiet) ;;
        -G|--get-value|--query) op=get ;;
        -v|--update) shift; op=set; val=$1 ;;
        *) unsupported ;;
    esac
    shift
done
[ -n "$name" ] && [ -n "$op" ] || unsupported
case $op in
    get) get "$S/$name.$node" ;;
    set) set_attr "$S/$name.$node" "$val" ;;
esac
EOF
    : >"$state/.writes"
    : >"$state/.unsupported"
    echo "$*" >"$state/.partition"
}

# fake_score STATE RSC NODE SCORE: NODE's promotion score, as a monitor would have left it.
fake_score() { echo "$4" >"$1/master-$2.$3"; }

# fake_calls_understood STATE: every call so far was one the fake knows; else says which.
fake_calls_understood() {
    [[ ! -s $1/.unsupported ]] || {
        echo "unexpected fake Pacemaker tool calls: $(cat "$1/.unsupported")" >&2
        return 1
    }
}

# fake_nothing_written STATE: no attribute was written so far; else says which.
fake_nothing_written() {
    [[ ! -s $1/.writes ]] || {
        echo "attributes written: $(cat "$1/.writes")" >&2
        return 1
    }
}
