set terminal pngcairo size 900,480 font "DejaVu Sans,10"
set output '../littles_law.png'
set title "Little's law: fetches/s against threads / upstream latency (50 ms)\n{/*0.85 fetchd: median of 3 runs, the whisker is their min–max; log axis: the thread counts are 8x apart}" enhanced
set ylabel 'fetches/s (log)'
set xlabel 'worker threads'
set logscale y
set format y "%.0f"
set yrange [50:10000]
set grid ytics
set style data histograms
set style histogram errorbars gap 1 lw 1
set style fill solid 0.8 border -1
set key top left
plot 'little.dat' using 2:2:2:xtic(1) title 'threads / 50 ms', \
     '' using 3:3:3 title 'threads / measured upstream latency', \
     '' using 4:5:6 title 'fetchd, measured', \
     '' using ($0+0.27):4:(sprintf('%.0f', $4)) with labels offset 0,1.2 notitle
