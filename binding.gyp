{
  "targets": [
    {
      "target_name": "clipscale",
      "sources": [
        "<!@(node -e \"const fs=require('fs');for(const d of ['native/napi','native/core','native/cuda_dispatch','native/cpu'])for(const f of fs.readdirSync(d).sort())if(f.endsWith('.cpp'))console.log(d+'/'+f)\")"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-fno-math-errno", "-fno-trapping-math", "-Wall", "-Wno-unused-parameter"],
      "libraries": ["-ldl", "-lpthread"],
      "conditions": [
        ["OS!='win' and '<!(node native/tools/find_mpi.cjs found)'=='true'", {
          "sources": ["<!@(node native/tools/find_mpi.cjs sources)"],
          "include_dirs": ["<!@(node native/tools/find_mpi.cjs include_dirs)"],
          "libraries": ["<!@(node native/tools/find_mpi.cjs libraries)"],
          "defines": ["CLIPSCALE_WITH_MPI"]
        }],
        ["'<!(node native/tools/find_jpeg.cjs found)'=='true'", {
          "include_dirs": ["<!@(node native/tools/find_jpeg.cjs include_dirs)"],
          "libraries": ["<!@(node native/tools/find_jpeg.cjs libraries)"],
          "defines": ["CLIPSCALE_WITH_JPEG"]
        }],
        ["OS=='linux' and '<!(node native/tools/find_jpeg.cjs found)'=='true'", {
          "ldflags": ["-Wl,--exclude-libs,libjpeg.a"]
        }]
      ],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_CPLUSPLUSFLAGS": ["-O3"]
      }
    }
  ]
}
