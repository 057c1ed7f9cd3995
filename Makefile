# Two commands matter: `make run` and `make test`. Both install missing Debian packages first
# (as root; otherwise they print the apt-get line and stop), then configure and build with CMake.
BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
SK2_FUZZ_SECONDS ?= 10
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
SOURCES     = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find include src tools tests bench -name '*.[ch]')

.PHONY: all deps build run test test-under-load asan soak tsan fuzz format format-check bench bench-discovery clean

all: build

deps:
	@scripts/install-deps.sh all

build: deps
	cmake -S . -B $(BUILD) -DSK2_WERROR=ON $(CMAKE_ARGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# A mock Kinect served on loopback with the web viewer, the commands to try next (with the real
# control endpoint) and a live status line. Ctrl-C stops it.
run: build
	@echo "sk2: open http://127.0.0.1:8080/ in a browser (Ctrl-C stops the server)"
	./$(BUILD)/tools/sk2 serve --mock 1 --bind 127.0.0.1 --http 127.0.0.1:8080 --hints

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The suite three times in a row while `stress` keeps every core busy (issue 11: no test may
# depend on an idle machine).
test-under-load: build
	scripts/test-under-load.sh $(BUILD) 3

# The same suite under AddressSanitizer and UndefinedBehaviorSanitizer.
asan: deps
	cmake -S . -B $(ASAN_BUILD) -DSK2_WERROR=ON -DSK2_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug $(CMAKE_ARGS) >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

# The soak (tests/soak/soak.c) for ten minutes under AddressSanitizer and LeakSanitizer: clients
# joining and leaving at random, a mock camera unplugged and plugged back, RSS growth under 5%
# after warm-up. `make asan` runs the one-minute version (ctest test `soak`). SK2_SOAK_SEED
# repeats a run.
SOAK_SECONDS ?= 600
soak: deps
	cmake -S . -B $(ASAN_BUILD) -DSK2_WERROR=ON -DSK2_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug $(CMAKE_ARGS) >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS) --target test_soak
	cd $(ASAN_BUILD) && SK2_SOAK_SECONDS=$(SOAK_SECONDS) ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ./tests/test_soak

# The programs whose tests run several threads at once under ThreadSanitizer: the server
# (actor, life-cycle worker, pipelines, capture threads: server, lifecycle, streams, client,
# hotplug, and the in-process restarts and CURVE handshakes of reconnect and security), the
# capture threads alone (device), concurrent decoders (codecs) and
# libfreenect's event thread (freenect), the relay's actor beside its upstream clients (relay),
# and the server's flow table and command handling with their clients (flow, command). libzmq and CZMQ are not instrumented:
# tests/tsan.supp says what is suppressed inside them and why. Optimised like a release, one
# program at a time (TSan slows code 5-15x; the tests count with generous deadlines, never a
# rate). openni2 is left out because OpenNI2's drivers race among their own threads at exit.
TSAN_TESTS ?= ^(server|lifecycle|streams|client|hotplug|device|codecs|freenect|reconnect|security|relay|flow|command|clock)$$
tsan: deps
	cmake -S . -B $(TSAN_BUILD) -DSK2_WERROR=ON -DSK2_TSAN=ON -DSK2_BUILD_BENCH=OFF \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	cd $(TSAN_BUILD) && \
	  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/tsan.supp \
	  ctest --output-on-failure -R '$(TSAN_TESTS)'

# libFuzzer targets, each run for a bounded time: SK2_FUZZ_SECONDS per target (default 10, so
# that CI's `make fuzz` over every target stays within about three minutes; `make fuzz
# SK2_FUZZ_SECONDS=600` for a longer run). `make test` replays their seeds in every build.
fuzz: deps
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DSK2_FUZZ=ON -DSK2_WERROR=ON -DSK2_BUILD_BENCH=OFF \
	  -DSK2_FUZZ_SECONDS=$(SK2_FUZZ_SECONDS) $(CMAKE_ARGS) >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	cd $(FUZZ_BUILD) && ctest --output-on-failure -L '^fuzz$$'

format:
	clang-format -i $(SOURCES)

format-check:
	clang-format --dry-run --Werror $(SOURCES)

bench: build
	./$(BUILD)/bench/bench_core

# Discovery delays (serve -> listed, stop -> gone), in a private network namespace: needs root.
bench-discovery: build
	sh tests/discovery/with-avahi-netns.sh /usr/bin/python3 bench/bench_discovery.py \
	  --sk2 $(BUILD)/tools/sk2 --runs 10

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
