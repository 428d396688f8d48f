#!/usr/bin/env bash
# Packs what a WebGPU job needs on a GPU machine that has no Node.js and no network into .gpu/ (git-ignored):
#   .gpu/node.xz                       this machine's node binary (x86-64 Linux), compressed
#   .gpu/node_modules/webgpu/          the `webgpu` package (Dawn for Node), linux-x64 binary only, compressed
#   .gpu/*.deb                         Debian's Vulkan and EGL loader libraries (the GPU driver is already there)
#   .gpu/setup.sh                      run `source .gpu/setup.sh` first on the GPU machine
# Then bundle the job next to it, e.g. (docs/perf.md § WebGPU):
#   npx esbuild bench/gpu-job.ts --bundle --platform=node --format=esm --external:webgpu \
#     --loader:.wgsl=text --outfile=.gpu/job.mjs
# copy the project folder (with .gpu/) to the GPU machine and run `source .gpu/setup.sh && node .gpu/job.mjs`.
# Usage, from the project root after `npm install`: bash scripts/gpu-pack.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu
[ -f .gpu/node.xz ] || xz -T2 -6 -c "$(readlink -f "$(command -v node)")" > .gpu/node.xz
src=node_modules/webgpu
dst=.gpu/node_modules/webgpu
if [ ! -f "$dst/dist/linux-x64/dawn.node.xz" ]; then
  [ -d "$src" ] || { echo "node_modules/webgpu is missing: run npm install first" >&2; exit 1; }
  mkdir -p "$dst/dist/linux-x64"
  cp "$src/package.json" "$src/index.js" "$dst/"
  if [ -f "$src/types.d.ts" ]; then cp "$src/types.d.ts" "$dst/"; fi
  xz -T2 -6 -c "$src/dist/linux-x64/dawn.node" > "$dst/dist/linux-x64/dawn.node.xz"
fi
if ! ls .gpu/libvulkan1_*.deb >/dev/null 2>&1; then
  # amd64 packages whatever this machine's own architecture list says; a private list folder leaves apt's alone
  lists=$(mktemp -d)
  mkdir -p "$lists/partial"
  apt=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists")
  apt-get "${apt[@]}" update -qq
  (cd .gpu && apt-get "${apt[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null)
  rm -rf "$lists"
fi
cat > .gpu/setup.sh <<'EOF'
# Source from the project root on the GPU machine: puts node on PATH, unpacks the Dawn binding and the Vulkan/EGL
# loaders, and points them at the NVIDIA driver when its files are where NVIDIA's container images put them.
mkdir -p /tmp/gpu-bin
[ -x /tmp/gpu-bin/node ] || { xz -dc .gpu/node.xz > /tmp/gpu-bin/node && chmod +x /tmp/gpu-bin/node; }
dawn=.gpu/node_modules/webgpu/dist/linux-x64
[ -f "$dawn/dawn.node" ] || xz -dc "$dawn/dawn.node.xz" > "$dawn/dawn.node"
for deb in .gpu/*.deb; do dpkg -x "$deb" /; done
ldconfig
export PATH=/tmp/gpu-bin:$PATH
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || true
node --version
EOF
du -sh .gpu
