#!/bin/sh
# The container's entrypoint in the StatefulSet: pod NAME-ORDINAL becomes
# node ORDINAL+1, and every member is listed by its stable DNS name under
# the headless Service. Environment (from the StatefulSet):
#   JOBD_SERVICE   the headless Service's name (e.g. jobd)
#   JOBD_NAMESPACE the namespace (from the downward API)
#   JOBD_REPLICAS  the number of members of the first cluster (3)
# Everything else jobd reads from JOBD_* variables as usual.
set -eu
pod=${HOSTNAME:?}
ordinal=${pod##*-}
case $ordinal in
    ''|*[!0-9]*) echo "entrypoint: pod name $pod does not end in -ORDINAL" >&2; exit 2 ;;
esac
set_name=${pod%-*}
domain=$JOBD_SERVICE.$JOBD_NAMESPACE.svc
id=$((ordinal + 1))
peers=
i=0
while [ "$i" -lt "${JOBD_REPLICAS:?}" ]; do
    peers=${peers:+$peers,}$((i + 1))=$set_name-$i.$domain:5740
    i=$((i + 1))
done
# Pods beyond the first cluster's size join as learners (then `add` and
# `promote` them on the leader's /ctl). Only an empty --dbdir reads this.
if [ "$ordinal" -lt "$JOBD_REPLICAS" ]; then
    state=new
else
    state=existing
    peers=$peers,$id=$pod.$domain:5740
fi
exec "${JOBD_BIN:-/usr/local/bin/jobd}" --id "$id" \
    --raftaddr "$pod.$domain:5740" \
    --fsaddr 0.0.0.0:5640 \
    --peers "$peers" \
    --initial-cluster-state "$state" \
    "$@"
