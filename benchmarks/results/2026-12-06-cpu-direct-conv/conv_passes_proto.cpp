#include "kernels/conv2d.h"
#include <chrono>
#include <cstdio>
#include <vector>
#include <random>
#include <algorithm>
#include <cstdint>
using namespace seis;
template<class F> double tm(F f){ f(); double best=1e9; for(int i=0;i<3;++i){auto t=std::chrono::steady_clock::now(); f(); best=std::min(best,std::chrono::duration<double>(std::chrono::steady_clock::now()-t).count());} return best; }
int main(){
  int L=5, base=8; int64_t N=4, S=256; double tot[3]={0,0,0}; double fl=0;
  struct C{int64_t res,c,k;const char*name;}; std::vector<C> cs;
  for(int l=0;l<L;++l){ int64_t r=S>>l, ch=base<<l; cs.push_back({r,l?ch/2:1,ch,"enc1"}); cs.push_back({r,ch,ch,"enc2"});
    if(l<L-1){cs.push_back({r,2*ch,ch,"up"}); cs.push_back({r,2*ch,ch,"dec1"}); cs.push_back({r,ch,ch,"dec2"});}}
  std::mt19937 g(1); std::normal_distribution<float> nd;
  for(auto& c: cs){ Conv2dShape s; s.n=N; s.h=c.res; s.w=c.res; s.c=c.c; s.k=c.k; s.r=3;
    std::vector<float> x(s.pixels()*s.c), w(s.weight_numel()), b(s.k), y(s.pixels()*s.k), dy(s.pixels()*s.k), dx(x.size()), dw(w.size()), db(s.k);
    for(auto&v:x)v=nd(g); for(auto&v:w)v=nd(g); for(auto&v:dy)v=nd(g);
    int64_t wsb=std::max({cpu::conv2d_workspace_bytes(s,ConvPass::forward,false),cpu::conv2d_workspace_bytes(s,ConvPass::backward_data,false),cpu::conv2d_workspace_bytes(s,ConvPass::backward_weight,false)});
    std::vector<char> ws(wsb+64); void* wp=(void*)(((uintptr_t)ws.data()+63)/64*64);
    double t0=tm([&]{cpu::conv2d_forward(s,ConvMath::f32,x.data(),w.data(),b.data(),true,y.data(),wp);});
    double t1=tm([&]{cpu::conv2d_backward_data(s,ConvMath::f32,dy.data(),y.data(),w.data(),dx.data(),wp);});
    double t2=tm([&]{cpu::conv2d_backward_weight(s,ConvMath::f32,x.data(),dy.data(),y.data(),dw.data(),db.data(),wp);});
    double f=s.flops()/1e9; fl+=3*f; tot[0]+=t0; tot[1]+=t1; tot[2]+=t2;
    printf("%-5s res %4ld c %3ld k %3ld  fwd %6.2f ms (%5.0f GF/s)  bwd_d %6.2f (%5.0f)  bwd_w %6.2f (%5.0f)\n",c.name,c.res,c.c,c.k,t0*1e3,f/t0,t1*1e3,f/t1,t2*1e3,f/t2);
  }
  printf("total fwd %.1f bwd_d %.1f bwd_w %.1f ms; %.1f GFLOP -> %.0f GF/s\n",tot[0]*1e3,tot[1]*1e3,tot[2]*1e3,fl,fl/(tot[0]+tot[1]+tot[2]));
}
