set terminal pngcairo size 900,480 font "DejaVu Sans,10"
set output '../offload_healthz.png'
set title "/healthz latency while every worker waits on /delay?ms=2000 (queue half full)\n{/*0.85 one point per /healthz at its send time; a probe given up after 10 s (red triangle) never got an answer}" enhanced
set xlabel 'time since the probe started (s)'
set ylabel 'latency (ms, log)'
set logscale y
set format y "%g"
set yrange [*:40000]
set grid
set key top right
set xrange [-0.3:*]
plot 'offload_idle.answered.tsv' using ($1/1000):($2/1000) with points pt 7 ps 0.5 title 'idle (no load)', 'offload_pooled.answered.tsv' using ($1/1000):($2/1000) with points pt 7 ps 0.5 title 'pooled, saturated', 'offload_inline_1.answered.tsv' using ($1/1000):($2/1000) with points pt 5 ps 1.6 title 'inline, one slow client', 'offload_inline.gaveup.tsv' using ($1/1000):($2/1000) with points pt 9 ps 2.5 lc rgb 'red' title 'no answer: gave up after 10 s (inline, same load)', 'offload_inline.gaveup.tsv' using ($1/1000):($2/1000):('gave up at 10 s, never answered') with labels left offset 1.5,0 tc rgb 'red' notitle
