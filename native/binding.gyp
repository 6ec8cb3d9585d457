{
  # clonebox's own libvirt binding: just what the health checker needs (see src/inventory/native.ts).
  # Build: npx node-gyp rebuild --directory native   (the project .npmrc sets nodedir=/usr: no header download)
  # Needs: a C++17 compiler, make, python3, pkg-config, libvirt-dev (libvirt + libvirt-qemu .pc files).
  "targets": [
    {
      "target_name": "clonebox_libvirt",
      "sources": ["src/libvirt_binding.cc"],
      # node-addon-api with C++ exceptions enabled (except.gypi): Napi errors are thrown, never ignored.
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "<!@(pkg-config --cflags libvirt libvirt-qemu)"],
      "libraries": ["<!@(pkg-config --libs libvirt libvirt-qemu)"],
      "ldflags": ["-pthread"]
    }
  ]
}
