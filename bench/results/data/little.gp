set terminal pngcairo size 900,480 font "DejaVu Sans,10"
set output '../littles_law.png'
set title "Little's law: fetches/s against threads / upstream latency (50 ms)"
set ylabel 'fetches/s (log)'
set xlabel 'worker threads'
set logscale y
set yrange [50:*]
set grid ytics
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top left
plot 'little.dat' using 2:xtic(1) title 'threads / 50 ms', \
     '' using 3 title 'threads / measured upstream latency', \
     '' using 4 title 'fetchd, measured'
