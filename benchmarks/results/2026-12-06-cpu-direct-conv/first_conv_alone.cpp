#include "kernels/conv2d.h"
#include <vector>
#include <cstdint>
#include <chrono>
#include <cstdio>
#include <random>
using namespace seis;
int main(){ Conv2dShape s{4,256,256,1,8,3};
 std::vector<float> x(s.pixels()*s.c,0.5f), w(s.weight_numel(),0.1f), b(s.k,0.f), y(s.pixels()*s.k);
 std::mt19937 g(1); std::normal_distribution<float> nd; for(auto&v:x)v=nd(g); for(auto&v:w)v=nd(g);
 std::vector<char> ws(cpu::conv2d_workspace_bytes(s,ConvPass::forward,false)+64); void* wp=(void*)(((uintptr_t)ws.data()+63)/64*64);
 for(int i=0;i<200;++i){ auto t=std::chrono::steady_clock::now(); cpu::conv2d_forward(s,ConvMath::f32,x.data(),w.data(),b.data(),true,y.data(),wp); if(i%50==0) printf("%.2f ms\n", std::chrono::duration<double>(std::chrono::steady_clock::now()-t).count()*1e3);} }
