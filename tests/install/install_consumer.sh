#!/usr/bin/env bash
# The install-consumer test (tests/install/CMakeLists.txt passes the arguments).
# Installs the build into a temporary prefix, checks the tree (soname links, no
# third-party headers), then builds consumer/ against it twice, through
# find_package(parley) and through pkg-config, and runs both binaries.
# Offline; removes its temporary directory on every exit.
set -euo pipefail

config='' cxx_flags='' ld_flags='' pkg_config=''
while (($#)); do
  case "$1" in
    --build-dir) build_dir=$2 ;;
    --config) config=$2 ;;
    --consumer) consumer=$2 ;;
    --cmake) cmake=$2 ;;
    --cxx) cxx=$2 ;;
    --cxx-flags) cxx_flags=$2 ;;
    --ld-flags) ld_flags=$2 ;;
    --libdir) libdir=$2 ;;
    --includedir) includedir=$2 ;;
    --pkg-config) pkg_config=$2 ;;
    --version) version=$2 ;;
    --soversion) soversion=$2 ;;
    *) echo "install_consumer.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift 2
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/parley-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

fail() { echo "install-consumer: $*" >&2; exit 1; }
step() { echo "== $*"; }

step "install into $prefix"
"$cmake" --install "$build_dir" --prefix "$prefix" ${config:+--config "$config"} >"$tmp/install.log" \
  || { cat "$tmp/install.log"; fail "cmake --install failed"; }

step "installed tree"
lib=$prefix/$libdir
inc=$prefix/$includedir
for f in "$inc/parley/parley.hpp" "$inc/parley/sys/transport.hpp" \
         "$lib/cmake/parley/parleyConfig.cmake" "$lib/cmake/parley/parleyConfigVersion.cmake" \
         "$lib/cmake/parley/parleyTargets.cmake" "$lib/pkgconfig/parley.pc" \
         "$lib/libparley.so.$version"; do
  [[ -f $f ]] || fail "missing $f"
done
[[ $(readlink "$lib/libparley.so") == "libparley.so.$soversion" ]] \
  || fail "libparley.so does not point to libparley.so.$soversion"
[[ $(readlink "$lib/libparley.so.$soversion") == "libparley.so.$version" ]] \
  || fail "libparley.so.$soversion does not point to libparley.so.$version"
soname=$(LC_ALL=C readelf -d "$lib/libparley.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname == "libparley.so.$soversion" ]] || fail "soname is '$soname', want libparley.so.$soversion"
if find "$prefix" -name '*.a' | grep -q .; then fail "a static library was installed"; fi
# cmake/parley.map: the library exports Parley's symbols only, never its copies
# of fmt, cereal or RapidJSON code.
foreign=$(LC_ALL=C nm -DC --defined-only "$lib/libparley.so.$version" | cut -d' ' -f3- \
  | grep -vE '^(parley::|parley_|((typeinfo( name)?|vtable|VTT|guard variable) for |(non-)?virtual thunk to )parley::)' \
  | head -5 || true)
[[ -z $foreign ]] || fail "libparley exports symbols that are not Parley's: $foreign"

step "public headers need no third-party header"
# Every include in an installed header is either another parley header or a
# standard one (standard C++ headers have no extension and no directory; the C
# ABI's parley.h includes the C headers stddef.h and stdint.h).
bad=$(grep -rhoE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"][^>"]+[>"]' "$inc" \
        | sed -E 's/.*[<"]([^>"]+)[>"]/\1/' | grep -vE '^parley/|^[a-z_]+$|^std(def|int)\.h$' | sort -u || true)
[[ -z $bad ]] || fail "installed headers include non-standard headers: $bad"
# And compiled alone with only the prefix's include dir, no header pulls in a
# file of a dependency.
while IFS= read -r h; do
  rel=${h#"$inc"/}
  # shellcheck disable=SC2086
  deps=$(echo "#include <$rel>" | "$cxx" -std=c++20 $cxx_flags -I"$inc" -x c++ -M - 2>"$tmp/dep.err") \
    || { cat "$tmp/dep.err"; fail "$rel does not compile on its own"; }
  if grep -qiE 'libwebsockets|lws[-_]|sodium|sqlite|/fmt/|cereal|rapidjson|openssl' <<<"$deps"; then
    fail "$rel pulls in a third-party header"
  fi
done < <(find "$inc/parley" -name '*.hpp' -o -name '*.h')

run_consumer() {
  local exe=$1 how=$2 out
  out=$("$exe" "$tmp/data-$how") || fail "$how consumer exited with $?"
  echo "$out"
  grep -qx "version $version protocol parley.v1" <<<"$out" || fail "$how consumer: wrong version line"
  grep -q '^open failed: ' <<<"$out" || fail "$how consumer: no open failure reported"
  # It must have loaded the installed library, not the build tree's.
  if command -v ldd >/dev/null; then
    ldd "$exe" | grep -F "libparley.so.$soversion => $lib/" >/dev/null \
      || { ldd "$exe"; fail "$how consumer does not load $lib/libparley.so.$soversion"; }
  fi
}

step "consumer through find_package(parley CONFIG)"
"$cmake" -S "$consumer" -B "$tmp/build-cmake" \
  -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
  -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF \
  -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_CXX_FLAGS="$cxx_flags" \
  -DCMAKE_EXE_LINKER_FLAGS="$ld_flags" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$tmp/configure.log" 2>&1 \
  || { cat "$tmp/configure.log"; fail "consumer configure failed"; }
grep -qF -- "parley_DIR: $lib/cmake/parley" "$tmp/configure.log" \
  || { cat "$tmp/configure.log"; fail "find_package did not find the installed package"; }
"$cmake" --build "$tmp/build-cmake" >"$tmp/build.log" 2>&1 \
  || { cat "$tmp/build.log"; fail "consumer build failed"; }
grep -qE -- '-std=(c|gnu)\+\+(20|2a|23|2b)' "$tmp/build-cmake/compile_commands.json" \
  || fail "parley::parley did not bring C++20 to the consumer"
run_consumer "$tmp/build-cmake/consumer" cmake

step "consumer through pkg-config"
[[ -n $pkg_config ]] || fail "pkg-config not found"
export PKG_CONFIG_PATH=$lib/pkgconfig
[[ $("$pkg_config" --modversion parley) == "$version" ]] || fail "pkg-config: wrong version"
pc_prefix=$(cd "$("$pkg_config" --variable=prefix parley)" && pwd -P)
[[ $pc_prefix == $(cd "$prefix" && pwd -P) ]] || fail "parley.pc prefix is $pc_prefix, not $prefix"
flags=$("$pkg_config" --cflags --libs parley)
echo "pkg-config --cflags --libs parley: $flags"
# shellcheck disable=SC2086
"$cxx" -std=c++20 $cxx_flags "$consumer/main.cpp" -o "$tmp/consumer-pc" $flags \
  -Wl,-rpath,"$lib" $ld_flags || fail "consumer compile with pkg-config flags failed"
run_consumer "$tmp/consumer-pc" pkg-config

step "ok"
