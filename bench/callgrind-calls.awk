# Calls to the functions whose names match FN (an awk regex, anchored) in a callgrind dump,
# summed over every call site: e.g. allocations per request from bench/callgrind.sh's KEEP dumps.
#   awk -v FN='__rustc::__rust_(alloc|alloc_zeroed|realloc)|malloc|calloc|realloc' -f bench/callgrind-calls.awk DUMP
# (callgrind compresses names: "cfn=(12) name" the first time, "cfn=(12)" after.)
/^c?fn=\(/ {
  id = $1; sub(/^c?fn=/, "", id)
  name = $0; sub(/^c?fn=\([0-9]+\) ?/, "", name)
  if (name != "") names[id] = name
  if ($0 ~ /^cfn=/) cur = names[id]
  next
}
/^calls=/ {
  n = $1; sub(/^calls=/, "", n)
  if (cur ~ ("^(" FN ")$")) total += n
}
END { print total + 0 }
