// Prototype (twenty-fifth session, not built by CMake): one core, rows of 4096 normalised into bf16
// rows, two loops (apply_row into float32, round_to_bf16) against GatherNormalizer::apply_row into bf16.
// g++ -O2 -std=c++20 -I. bf16_rows_proto.cpp build/libseis_io.a build/libseis_engine.a
//   build/libseis_kernels_cpu.a -fopenmp
#include "io/normalize.h"
#include "io/gather_rows.h"
#include "engine/simd_dispatch.h"
#include <chrono>
#include <cstdio>
#include <vector>
#include <random>
using namespace seis;
int main(){
  const int64_t W=4096, R=16;
  std::vector<float> blk(W*R), row(W); std::mt19937 g(1); std::normal_distribution<float> n;
  for(auto&v:blk) v=n(g);
  std::vector<bf16> out(W*R);
  for (int lv=0; lv<3; ++lv){ set_simd_level((SimdLevel)lv);
  for (Normalize mode: {Normalize::trace, Normalize::sample}) for (bool flip : {false, true}) {
    GatherNormalizer with(mode,W); with.begin(); with.add_rows(blk.data(),R); with.finish();
    auto t=[&](const char* name, auto f){ int reps=8000; auto a=std::chrono::steady_clock::now(); for(int i=0;i<reps;++i) f(); auto b=std::chrono::steady_clock::now();
      double s=std::chrono::duration<double>(b-a).count(); printf("%-8s %-6s %s %-26s %6.2f GB/s of f32\n",simd_level_name(simd_level()),normalize_name(mode),flip?"flip":"    ",name, reps*W*R*4/s/1e9);};
    t("apply_row + round_to_bf16", [&]{ for(int64_t r=0;r<R;++r){ with.apply_row(blk.data()+r*W,row.data(),0,W,flip); round_to_bf16(row.data(),W,out.data()+r*W);} });
    t("apply_row into bf16", [&]{ for(int64_t r=0;r<R;++r) with.apply_row(blk.data()+r*W,out.data()+r*W,0,W,flip); });
  }}
}
