set terminal pngcairo size 900,480 font "DejaVu Sans,10"
set output '../offload_healthz.png'
set title "/healthz latency while every worker waits on /delay?ms=2000 (queue half full)\n{/*0.85 one point per /healthz at its send time; inline ones given up after 10 s are drawn at the time waited}" enhanced
set xlabel 'time since the probe started (s)'
set ylabel 'latency (ms, log)'
set logscale y
set grid
set key top right
set xrange [-0.3:*]
plot 'offload_idle.tsv' using ($1/1000):($2/1000) with points pt 7 ps 0.5 title 'idle (no load)', 'offload_pooled.tsv' using ($1/1000):($2/1000) with points pt 7 ps 0.5 title 'pooled, saturated', 'offload_inline.tsv' using ($1/1000):($2/1000) with points pt 5 ps 1.6 title 'inline (threads = 0), same load', 'offload_inline_1.tsv' using ($1/1000):($2/1000) with points pt 5 ps 1.6 title 'inline, one slow client'
