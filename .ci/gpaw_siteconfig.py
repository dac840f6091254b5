# GPAW build configuration for a single-core (no MPI) build against Debian's libxc, OpenBLAS and FFTW.
mpi = False
compiler = 'g++'  # GPAW 26.x compiles its C sources as C++
fftw = True
libraries = ['xc', 'fftw3', 'blas']  # with a siteconfig, setup.py no longer adds 'blas' itself
