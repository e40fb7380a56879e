// CS_TARGET_CLONES builds a function for AVX-512, AVX2 and baseline x86-64, picked at load time,
// so a loop vectorises at the machine's width while the addon itself needs no -m flags.
// Elsewhere (ARM, clang) it is the plain function.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CS_TARGET_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CS_TARGET_CLONES
#endif
