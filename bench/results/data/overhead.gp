set terminal pngcairo size 900,480 font "DejaVu Sans,10"
set output '../overhead_cdf.png'
set title 'One client, sequential GET /json: curl straight to the upstream vs through fetchd'
set xlabel 'latency per request (µs, log)'
set ylabel 'fraction of requests'
set logscale x
set grid
set key bottom right
plot 'overhead_direct.cdf' using 1:2 with lines lw 2 title 'curl -> upstream', \
     'overhead_fetchd.cdf' using 1:2 with lines lw 2 title 'curl -> fetchd -> upstream'
