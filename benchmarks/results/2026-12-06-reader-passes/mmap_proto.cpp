// Prototype (twenty-fifth session, not built by CMake): two threads read the 64 MiB gathers of a file in
// the page cache into huge-page slots, in 1 MiB blocks, six ways: pread + the fused check-and-normalise
// pass (the reader's first epoch), mmap + memcpy + that pass, mmap + sums + apply_row out of place,
// pread + apply_finite_rows_in_place (the reader's later epochs), mmap + apply_row out of place, mmap +
// a fused out-of-place pass, mmap + apply_row then sums. Usage: mmap_proto FILE MODE (0-6).
// g++ -O3 -march=native -ffp-contract=off -std=c++20 -I. mmap_proto.cpp build/libseis_io.a
//   build/libseis_engine.a build/libseis_kernels_cpu.a -fopenmp -lpthread
#include "io/normalize.h"
#include <sys/mman.h>
#include <fcntl.h>
#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>
#include <cstdlib>
using namespace seis;

static void fused_oop(const float* src, float* dst, int64_t count, int64_t width, double* sum, double* sum2, const float* cm, const float* ci){
  for(int64_t j0=0;j0+32<=width;j0+=32){ double s[32],s2[32]; float m[32],v[32];
    for(int j=0;j<32;++j){s[j]=sum[j0+j];s2[j]=sum2[j0+j];m[j]=cm[j0+j];v[j]=ci[j0+j];}
    for(int64_t t0=0;t0<count;t0+=8){ int64_t t1=std::min(count,t0+8);
      for(int64_t t=t0;t<t1;++t){ const float* x=src+t*width+j0; for(int j=0;j<32;++j){ float a=x[j]; s[j]+=a; s2[j]+=(double)a*a;}}
      for(int64_t t=t0;t<t1;++t){ const float* x=src+t*width+j0; float* y=dst+t*width+j0; for(int j=0;j<32;++j) y[j]=(x[j]-m[j])*v[j];}
    }
    for(int j=0;j<32;++j){sum[j0+j]=s[j];sum2[j0+j]=s2[j];}
  }
}
int main(int argc,char**argv){
  int fd=open(argv[1],O_RDONLY); int mode=atoi(argv[2]); int nthreads=2;
  off_t size=lseek(fd,0,SEEK_END);
  const int64_t W=4096, H=4096; const size_t G=H*W*4; long ng=(size-(1<<20))/G;
  const int64_t BR=64; const size_t B=BR*W*4;
  std::vector<float> init(W*8,1.0f); for(size_t i=0;i<init.size();++i) init[i]=float(i%97)*0.1f;
  GatherNormalizer with(Normalize::trace,W); with.begin(); with.add_rows(init.data(),8); with.finish();
  std::vector<std::thread> th; auto t0=std::chrono::steady_clock::now();
  for(int k=0;k<nthreads;++k) th.emplace_back([&,k]{
    float* slot=(float*)aligned_alloc(2<<20,G); madvise(slot,G,MADV_HUGEPAGE); memset(slot,0,G);
    GatherNormalizer chk(Normalize::trace,W); std::vector<double> sum(W),sum2(W); std::vector<float> cm(W,0.5f),ci(W,2.0f);
    for(long g=k; g<ng; g+=nthreads){ off_t off=4096+(off_t)g*G; chk.begin();
      if(mode==0||mode==3){ for(size_t o=0;o<G;o+=B){ pread(fd,(char*)slot+o,B,off+o); float* r=slot+o/4;
          if(mode==0) chk.add_rows_normalizing(r,BR,with,false); else with.apply_finite_rows_in_place(r,BR);} }
      else { char* p=(char*)mmap(nullptr,G,PROT_READ,MAP_SHARED,fd,off); madvise(p,G,MADV_SEQUENTIAL);
        for(size_t o=0;o<G;o+=B){ const float* src=(const float*)(p+o); float* dst=slot+o/4;
          if(mode==1){ memcpy(dst,src,B); chk.add_rows_normalizing(dst,BR,with,false);} 
          else if(mode==2){ chk.add_rows(src,BR); for(int64_t t=0;t<BR;++t) with.apply_row(src+t*W,dst+t*W,0,W,false);} 
          else if(mode==6){ for(int64_t t=0;t<BR;++t) with.apply_row(src+t*W,dst+t*W,0,W,false); chk.add_rows(src,BR);} else if(mode==5){ fused_oop(src,dst,BR,W,sum.data(),sum2.data(),cm.data(),ci.data()); } else if(mode==4){ for(int64_t t=0;t<BR;++t) with.apply_row(src+t*W,dst+t*W,0,W,false);} }
        munmap(p,G);} }
  });
  for(auto&t:th)t.join(); double s=std::chrono::duration<double>(std::chrono::steady_clock::now()-t0).count();
  const char* names[]={"pread+fused(now, first)","mmap+memcpy+fused","mmap+sums+apply_row(first)","pread+apply_finite(now, later)","mmap+apply_row(later)","mmap+fused out of place(first)","mmap+apply_row then sums(first)"};
  printf("%-32s %.2f GB/s\n",names[mode], ng*G/s/1e9);
}
