set terminal pngcairo size 900,480 font "DejaVu Sans,10"
set output '../small_responses.png'
set title "/text?n=64, keep-alive, 64 connections: fetches/s"
set ylabel 'requests/s (log)'
set logscale y
set grid ytics
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -20
unset key
plot 'small_responses.dat' using 2:xtic(1) lc rgb '#4477aa', '' using 0:2:(sprintf('%.4g', $2)) with labels offset 0,0.7
