#!/usr/bin/env bash
# Regenerates vectors.tsv with openssl, independently of hookd's signer:
# each line is secret, timestamp, body (hex), expected X-Webhook-Signature.
# The signature is HMAC-SHA256 over "<timestamp>.<body>" keyed with the whole
# secret string, in lower-case hex, prefixed "sha256=" (HookBridge's scheme).
set -euo pipefail
cd "$(dirname "$0")"
sig() { printf '%s.%s' "$2" "$3" | openssl dgst -sha256 -hmac "$1" -r | cut -d' ' -f1; }
{
  printf '# secret\ttimestamp\tbody_hex\tsignature\n'
  while IFS=$'\t' read -r secret ts body; do
    printf '%s\t%s\t%s\tsha256=%s\n' "$secret" "$ts" "$(printf '%s' "$body" | xxd -p | tr -d '\n')" "$(sig "$secret" "$ts" "$body")"
  done <<'IN'
whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw	1700000000	{"event":"order.created","id":123}
whsec_5PnwkA4jPF1JdJd+WxZGbxsNZYHR/4tB	1764115200	{ "b" : 1,  "a":"\u00e9", "big": 12345678901234567890123 }
whsec_uV0/SK0G3/DYerQIHJ7lGE0iZ5tw+/X9	0	{}
whsec_SJInkT5ormH1YgM+PGtIIGX6muBR7M9M	2000000000	{"nested":{"list":[1,2,3],"s":"line\nbreak"}}
IN
} > vectors.tsv
