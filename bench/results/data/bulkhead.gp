set terminal pngcairo size 900,480 font "DejaVu Sans,10"
set output '../bulkhead.png'
set title "Fast host p99 (8 connections, /text?n=64) under each condition\n{/*0.85 median of the runs, whiskers min–max; log axis: 2000 ms is a fetch queued behind the slow ones}" enhanced
set ylabel 'p99 latency (ms, log)'
set logscale y
set format y "%g"
set grid ytics
set style data histograms
set style histogram errorbars gap 1 lw 1.5
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -20
unset key
plot 'bulkhead.dat' using 2:3:4:xtic(1) lc rgb '#4477aa', '' using 0:4:(sprintf('%g', $2)) with labels offset 0,0.8
