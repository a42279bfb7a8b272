set terminal pngcairo size 1100,480 font "DejaVu Sans,10"
set output '../large_loop_cpu.png'
set multiplot layout 1,2 title "Large bodies, 4 connections: median of 3 runs each, whiskers min–max"
set title "the loop thread's CPU (% of one core)"
set yrange [0:100]
set ylabel '% of one core'
set format y "%.0f"
set grid ytics
set style data histograms
set style histogram errorbars gap 1 lw 1.5
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -20
unset key
plot 'large_loop_cpu.dat' using 2:3:4:xtic(1) lc rgb '#4477aa', '' using 0:4:(sprintf('%.0f', $2)) with labels offset 0,0.8

set title "fetches/s, and the upstream straight from wrk (once)"
set yrange [0:*]
set key top right
set ylabel 'fetches/s'
set format y "%.0f"
set style histogram errorbars gap 1 lw 1.5
plot 'large_rps.dat' using 2:3:4:xtic(1) lc rgb '#4477aa' title 'fetchd (whole document)', \
     'large_direct.dat' using 2:2:2 lc rgb '#bbbbbb' title 'upstream direct', \
     'large_rps.dat' using ($0-0.17):4:(sprintf('%.0f', $2)) with labels offset 0,0.8 notitle
unset multiplot
