module kubevod/bench/viewers

go 1.26.8
