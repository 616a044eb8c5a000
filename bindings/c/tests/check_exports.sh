#!/bin/sh
# ctest c-exports: libparley.so exports only Parley's own public symbols (the C
# ABI's parley_* functions, and the C++ API of include/parley/ with its
# vtables, type information and thunks), nothing of Parley's internal
# namespaces (parley::client, parley::store, ...; only parley::sys is public)
# and nothing of fmt, SQLite, cereal, RapidJSON, libsodium or the C++ library;
# every function parley.h declares is exported, and so are the C++ API's entry
# points and the type information of the interfaces apps subclass; the soname
# carries the ABI version.
#   check_exports.sh LIBRARY HEADER EXPECTED_SONAME
set -eu
lib="$1"
header="$2"
soname="$3"
fail=0
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

nm -D --defined-only "$lib" | awk '{print $NF}' | sort -u >"$tmp/raw"
[ -s "$tmp/raw" ] || { echo "c-exports: nm -D found no symbols in $lib"; exit 1; }
c++filt <"$tmp/raw" >"$tmp/demangled"
paste -d '\t' "$tmp/raw" "$tmp/demangled" >"$tmp/pairs"

# Allowed: C functions parley_*, and demangled C++ names of namespace parley.
while IFS="$(printf '\t')" read -r raw name; do
  case "$raw" in
    parley_*) continue ;;
    _Z*) ;;
    *) echo "c-exports: unexpected C symbol: $raw"; fail=1; continue ;;
  esac
  case "$name" in
    parley::*|"typeinfo for parley::"*|"typeinfo name for parley::"*|"vtable for parley::"*|\
    "VTT for parley::"*|"non-virtual thunk to parley::"*|"virtual thunk to parley::"*|\
    "guard variable for parley::"*) ;;
    *) echo "c-exports: not Parley's: $name"; fail=1 ;;
  esac
done <"$tmp/pairs"

# Nothing of an internal namespace: parley::NAME:: with a lower-case NAME
# other than sys, anywhere in a name (argument and template types too).
grep -oE '(^|[^A-Za-z0-9_:])parley::[a-z_][a-z0-9_]*::' "$tmp/demangled" |
  sed -E 's/.*parley::([a-z0-9_]+)::$/\1/' | grep -vx sys | sort | uniq -c >"$tmp/internal" || true
if [ -s "$tmp/internal" ]; then
  echo "c-exports: symbols of internal namespaces are exported (count, namespace):"
  cat "$tmp/internal"
  fail=1
fi

# The C++ API's entry points, and the vtables and type information of the
# interfaces an app subclasses, are there.
for want in 'parley::Client::open(' 'parley::version()' 'parley::Status::to_string' \
            'parley::MessageId::random()' 'parley::role_allows(' 'parley::to_string(parley::StatusCode)' \
            'vtable for parley::sys::Transport' 'typeinfo for parley::sys::Transport' \
            'typeinfo for parley::sys::TransportHandler' 'vtable for parley::sys::AnalyticsSink' \
            'typeinfo for parley::sys::AnalyticsSink' 'parley::sys::AnalyticsEvent::label('; do
  grep -qF "$want" "$tmp/demangled" || { echo "c-exports: '$want' is not exported"; fail=1; }
done

# Nothing of the dependencies, whatever its namespace.
if grep -E '^(fmt::|sqlite3|cereal::|rapidjson::|sodium|crypto_|lws_|std::)' "$tmp/demangled"; then
  echo "c-exports: a dependency's symbols are exported"
  fail=1
fi

# Every function of parley.h is there.
grep -oE '\bparley_[a-z0-9_]+\(' "$header" | tr -d '(' | sort -u >"$tmp/declared"
for f in $(cat "$tmp/declared"); do
  grep -qx "$f" "$tmp/raw" || { echo "c-exports: $f is declared in parley.h but not exported"; fail=1; }
done
count="$(wc -l <"$tmp/declared")"
[ "$count" -ge 50 ] || { echo "c-exports: only $count functions found in parley.h"; fail=1; }

# The soname.
got="$(objdump -p "$lib" | awk '$1 == "SONAME" {print $2}')"
[ "$got" = "$soname" ] || { echo "c-exports: soname is '$got', expected '$soname'"; fail=1; }

[ "$fail" -eq 0 ] && echo "c-exports: $(wc -l <"$tmp/raw") symbols, $count C functions of parley.h, soname $got: ok"
exit "$fail"
