# The two README commands. Both install what they need first (Debian packages via apt-get).
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: deps build demo test clean
deps:
	bash scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j $(JOBS)

# The main job: start `quench serve` on the embedded model, ask it one chat question, stop it.
demo: build
	bash scripts/demo.sh $(BUILD)/quench

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

clean:
	rm -rf $(BUILD)
