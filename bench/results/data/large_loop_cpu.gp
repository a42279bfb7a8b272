set terminal pngcairo size 900,480 font "DejaVu Sans,10"
set output '../large_loop_cpu.png'
set title "Large bodies: the loop thread's CPU (percent of one core)"
set ylabel '% of one core'
set yrange [0:*]
set grid ytics
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -20
unset key
plot 'large_loop_cpu.dat' using 2:xtic(1) lc rgb '#4477aa', '' using 0:2:(sprintf('%.4g', $2)) with labels offset 0,0.7
