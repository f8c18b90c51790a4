#!/bin/sh
# sh-curl: the job protocol (docs/EXTERNAL.md) in POSIX shell with curl and
# jq: one curl per base, one after another. It honours the per-request
# timeout and the retries (a fixed backoff), not the rate limit or the CPU
# work; it is here to show that any language can take part.
set -u
for tool in curl jq; do
  command -v "$tool" >/dev/null 2>&1 || { echo "error: sh-curl needs $tool (Debian: apt-get install $tool)" >&2; exit 2; }
done
job=$(cat)
[ "$(printf '%s' "$job" | jq -r .protocol)" = 1 ] || { echo "error: sh-curl speaks protocol 1" >&2; exit 2; }
url=$(printf '%s' "$job" | jq -r .url)
timeout=$(printf '%s' "$job" | jq -r .timeout_s)
retries=$(printf '%s' "$job" | jq -r .retries)
cafile=
if [ "$(printf '%s' "$job" | jq -r '.ca_cert_pem // empty')" != "" ]; then
  cafile=$(mktemp)
  trap 'rm -f "$cafile"' EXIT
  printf '%s' "$job" | jq -r .ca_cert_pem >"$cafile"
fi
echo '{"ready":true}'
printf '%s' "$job" | jq -r '.bases[]' | while read -r base; do
  attempt=0
  while :; do
    attempt=$((attempt + 1))
    body=$(mktemp)
    status=$(curl -s -o "$body" -w '%{http_code}' --max-time "$timeout" ${cafile:+--cacert "$cafile"} \
      "$(printf '%s' "$url" | sed "s/{base}/$base/g")")
    code=$?
    if [ "$code" = 0 ] && [ "$status" = 200 ]; then
      jq -c --arg b "$base" --argjson n "$attempt" '{base: $b, body: ., attempts: $n}' "$body" 2>/dev/null \
        || printf '{"base":"%s","error":"decode","attempts":%d}\n' "$base" "$attempt"
      rm -f "$body"
      break
    fi
    rm -f "$body"
    case "$status" in ""|000) status=0 ;; esac
    if [ "$code" = 28 ]; then kind=timeout
    elif [ "$code" != 0 ]; then kind=connection
    else kind=http_status
    fi
    case "$kind:$status" in
      timeout:*|connection:*|http_status:408|http_status:429|http_status:5??) retry=yes ;;
      *) retry=no ;;
    esac
    if [ "$retry" = no ] || [ "$attempt" -gt "$retries" ]; then
      printf '{"base":"%s","error":"%s","status":%s,"attempts":%d}\n' "$base" "$kind" "$status" "$attempt"
      break
    fi
    sleep 0.1
  done
done
