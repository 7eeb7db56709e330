module kubevod.local/testenv/pause

go 1.22
