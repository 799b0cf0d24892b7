#include <cblas.h>
#include <chrono>
#include <cstdio>
#include <vector>
#include <algorithm>
int main(){ openblas_set_num_threads(1);
 for (int C : {8, 16, 32, 64}) { int K = C; int rrc = 9*C;
  for (int np : {128, 256, 512, 1024, 2048, 4096}) {
  std::vector<float> col(np*rrc, 0.5f), dy(np*K, 0.25f), dw(K*rrc);
  double t1=1e9;
  for (int it=0; it<30; ++it) {
   auto a=std::chrono::steady_clock::now();
   cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, rrc, np, 1.f, dy.data(), K, col.data(), rrc, 1.f, dw.data(), rrc);
   auto b=std::chrono::steady_clock::now();
   t1=std::min(t1,std::chrono::duration<double>(b-a).count());
  }
  double fl=2.0*K*rrc*np; printf("C=K=%d np=%5d (col %4ld KiB): %.1f GF/s\n",C,np,(long)np*rrc*4/1024,fl/t1/1e9);
 }} }
