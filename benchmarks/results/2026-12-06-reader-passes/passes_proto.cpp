// Prototype (twenty-fifth session, not built by CMake): one core, the reader's per-block passes over a
// cache-resident block of R rows x 4096 traces at every SIMD level, GB/s of float32.
// g++ -O2 -std=c++20 -I. passes_proto.cpp build/libseis_io.a build/libseis_engine.a
//   build/libseis_kernels_cpu.a -fopenmp
#include "io/normalize.h"
#include "io/gather_rows.h"
#include "engine/simd_dispatch.h"
#include <chrono>
#include <cstdio>
#include <vector>
#include <random>
#include <cstring>
using namespace seis;
int main(){
  const int64_t W=4096, R=16;
  std::vector<float> blk(W*R), dst(W*R); std::mt19937 g(1); std::normal_distribution<float> n;
  for(auto&v:blk) v=n(g);
  std::vector<bf16> b16(W*R); std::vector<uint8_t> lab(W*R,1), lab2(W*R);
  for (int lv=0; lv<3; ++lv){ set_simd_level((SimdLevel)lv); printf("%s\n", simd_level_name(simd_level()));
  for (Normalize mode: {Normalize::trace, Normalize::sample}) {
  GatherNormalizer with(mode,W); with.begin(); with.add_rows(blk.data(),R); with.finish();
  auto t=[&](const char* name, auto f){ int reps=2000; auto a=std::chrono::steady_clock::now(); for(int i=0;i<reps;++i) f(); auto b=std::chrono::steady_clock::now();
    double s=std::chrono::duration<double>(b-a).count(); printf("  %-6s %-28s %6.2f GB/s\n",normalize_name(mode),name, reps*W*R*4/s/1e9);};
  GatherNormalizer acc(mode,W); acc.begin();
  t("add_rows_normalizing", [&]{ acc.add_rows_normalizing(blk.data(),R,with,false); });
  t("add_rows_normalizing flip", [&]{ acc.add_rows_normalizing(blk.data(),R,with,true); });
  t("apply_finite", [&]{ with.apply_finite_rows_in_place(blk.data(),R); });
  t("apply_finite flip", [&]{ with.apply_finite_rows_in_place(blk.data(),R,true); });
  t("apply_row", [&]{ for(int64_t r=0;r<R;++r) with.apply_row(blk.data()+r*W, dst.data()+r*W,0,W,false); });
  t("apply_row flip", [&]{ for(int64_t r=0;r<R;++r) with.apply_row(blk.data()+r*W, dst.data()+r*W,0,W,true); });
  t("apply_row crop", [&]{ for(int64_t r=0;r<R;++r) with.apply_row(blk.data()+r*W, dst.data()+r*W,3,W-10,false); });
  }
  auto t=[&](const char* name, auto f){ int reps=2000; auto a=std::chrono::steady_clock::now(); for(int i=0;i<reps;++i) f(); auto b=std::chrono::steady_clock::now();
    double s=std::chrono::duration<double>(b-a).count(); printf("  %-35s %6.2f GB/s (of f32)\n",name, reps*W*R*4/s/1e9);};
  t("all_finite", [&]{ volatile bool ok = all_finite(blk.data(),W*R); (void)ok; });
  t("round_to_bf16", [&]{ round_to_bf16(blk.data(),W*R,b16.data()); });
  t("reverse_copy_bytes(label, x4)", [&]{ reverse_copy_bytes(lab.data(),W*R,lab2.data()); });
  }
}
