module zcrelay.bench/tools

go 1.19
